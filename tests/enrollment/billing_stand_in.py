"""A stand-in for billing's family workflow, addressed by the same name: it records what enrollment tells it."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from core.contracts.billing import (
        FAMILY_BILLING_WORKFLOW,
        SIGNAL_STUDENT_STARTED,
        SIGNAL_STUDENT_STOPPED,
        UPDATE_START_STUDENT,
        FamilyBillingInput,
        StartOutcome,
        StudentStarted,
        StudentStopped,
    )


@workflow.defn(name=FAMILY_BILLING_WORKFLOW)
class StandInBillingWorkflow:
    def __init__(self) -> None:
        self._events: list[str] = []

    @workflow.run
    async def run(self, request: FamilyBillingInput) -> list[str]:
        # Long enough for any test; the test's task queue is abandoned afterwards.
        await workflow.wait_condition(lambda: False, timeout=timedelta(minutes=10))
        return self._events

    @workflow.signal(name=SIGNAL_STUDENT_STARTED)
    def student_started(self, message: StudentStarted) -> None:
        self._events.append(f"started:{message.enrollment_id}:{message.first_regular_lesson_at.isoformat()}")

    @workflow.update(name=UPDATE_START_STUDENT)
    def start_student(self, message: StudentStarted) -> StartOutcome:
        self.student_started(message)
        return StartOutcome(enrollment_id=message.enrollment_id, status="started")

    @workflow.signal(name=SIGNAL_STUDENT_STOPPED)
    def student_stopped(self, message: StudentStopped) -> None:
        self._events.append(f"stopped:{message.enrollment_id}")

    @workflow.query(name="events")
    def events(self) -> list[str]:
        return self._events
