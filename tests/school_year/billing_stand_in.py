"""A stand-in for billing's family workflow, addressed by the same name: it records what the school year tells it
(a student started, stopped with the end of their last lesson, or booked for the next semester)."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.contracts.billing import (
        FAMILY_BILLING_WORKFLOW,
        SIGNAL_LESSONS_BOOKED,
        SIGNAL_STUDENT_STARTED,
        SIGNAL_STUDENT_STOPPED,
        UPDATE_START_STUDENT,
        FamilyBillingInput,
        LessonsBooked,
        StartOutcome,
        StudentStarted,
        StudentStopped,
    )


@workflow.defn(name=FAMILY_BILLING_WORKFLOW)
class SchoolYearBillingStandIn:
    def __init__(self) -> None:
        self._events: list[str] = []

    @workflow.run
    async def run(self, request: FamilyBillingInput) -> list[str]:
        # Long enough for any test; the test's task queue is abandoned afterwards.
        await workflow.wait_condition(lambda: False, timeout=timedelta(minutes=10))
        return self._events

    @workflow.signal(name=SIGNAL_STUDENT_STARTED)
    def student_started(self, message: StudentStarted) -> None:
        self._events.append(f"started:{message.enrollment_id}")

    @workflow.update(name=UPDATE_START_STUDENT)
    def start_student(self, message: StudentStarted) -> StartOutcome:
        self.student_started(message)
        return StartOutcome(enrollment_id=message.enrollment_id, status="started")

    @workflow.signal(name=SIGNAL_STUDENT_STOPPED)
    def student_stopped(self, message: StudentStopped) -> None:
        last = message.last_lesson_ends_at.isoformat() if message.last_lesson_ends_at else "-"
        self._events.append(f"stopped:{message.enrollment_id}:{last}")

    @workflow.signal(name=SIGNAL_LESSONS_BOOKED)
    def lessons_booked(self, message: LessonsBooked) -> None:
        self._events.append(f"booked:{message.enrollment_id}:{message.last_lesson_ends_at.isoformat()}")

    @workflow.query(name="events")
    def events(self) -> list[str]:
        return self._events
