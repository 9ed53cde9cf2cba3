"""A closure added after lessons were booked (``ClosureWorkflow``, ``closure-{closure id}``).

Each scheduled lesson on the closed days is cancelled with a make-up credit (whose own ``MakeupCreditWorkflow``
starts here, as a cancellation's does) or moved to the teacher's nearest free slot (cancelled and credited when
none is free); then each family and each teacher gets one email listing their lessons, and the counts are kept
on the closure. Orchestration only: the database steps are ``activities/closures.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.closures import ClosureActivities
    from activities.email import EmailActivities
    from core.contracts.closures import (
        CLOSURE_WORKFLOW,
        QUERY_OUTCOME,
        ClosureInput,
        ClosureNotice,
        ClosureNoticesRequest,
        ClosureOutcome,
        ClosureRef,
        HandleLesson,
        LessonHandled,
        RecordOutcome,
    )
    from core.contracts.email import SendEmail
    from core.contracts.makeup import MAKEUP_CREDIT_WORKFLOW, MakeupCreditInput
    from core.temporal import makeup_credit_workflow_id

DB_TIMEOUT = timedelta(seconds=30)
DB_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
EMAIL_TIMEOUT = timedelta(seconds=30)
EMAIL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))


@workflow.defn(name=CLOSURE_WORKFLOW)
class ClosureWorkflow:
    def __init__(self) -> None:
        self._outcome = ClosureOutcome()

    @workflow.run
    async def run(self, request: ClosureInput) -> ClosureOutcome:
        ref = ClosureRef(closure_id=request.closure_id)
        listed = await workflow.execute_activity_method(
            ClosureActivities.lessons, ref, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
        )
        self._outcome.lessons = len(listed.lessons)
        handled: list[LessonHandled] = []
        # One lesson at a time: lessons moved earlier take their slots before the next one looks.
        for lesson in listed.lessons:
            workflow.set_current_details(f"{request.lesson_action}: lesson {len(handled) + 1} of {len(listed.lessons)}")
            done = await workflow.execute_activity_method(
                ClosureActivities.handle_lesson,
                HandleLesson(
                    closure_id=request.closure_id,
                    lesson_id=lesson.lesson_id,
                    starts_at=lesson.starts_at,
                    lesson_action=request.lesson_action,
                    policy=request.policy,
                ),
                start_to_close_timeout=DB_TIMEOUT,
                retry_policy=DB_RETRY,
            )
            handled.append(done)
            self._count(done)
            if done.credit_id is not None:
                await self._start_credit(done, request)
        workflow.set_current_details(f"{len(handled)} lessons handled; telling families and teachers")
        notices = await workflow.execute_activity_method(
            ClosureActivities.notices,
            ClosureNoticesRequest(closure_id=request.closure_id, handled=handled),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        await asyncio.gather(*(self._tell(request, notice) for notice in notices.notices))
        self._outcome.families_told = sum(1 for n in notices.notices if n.to == "parent")
        self._outcome.teachers_told = sum(1 for n in notices.notices if n.to == "teacher")
        self._outcome.done = True
        await workflow.execute_activity_method(
            ClosureActivities.record_outcome,
            RecordOutcome(closure_id=request.closure_id, outcome=self._outcome),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        return self._outcome

    @workflow.query(name=QUERY_OUTCOME)
    def outcome(self) -> ClosureOutcome:
        return self._outcome

    def _count(self, done: LessonHandled) -> None:
        if done.result == "cancelled":
            self._outcome.cancelled += 1
        elif done.result == "moved":
            self._outcome.moved += 1
        if done.credit_id is not None:
            self._outcome.credited += 1

    async def _start_credit(self, done: LessonHandled, request: ClosureInput) -> None:
        assert done.credit_id is not None
        assert done.credit_expires_at is not None
        credit = MakeupCreditInput(
            credit_id=done.credit_id,
            parent_id=done.parent_id,
            teacher_id=done.teacher_id,
            expires_at=done.credit_expires_at,
            reminder_before=request.policy.reminder_before,
        )
        # The credit's workflow may run already (started by an earlier attempt).
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await workflow.start_child_workflow(
                MAKEUP_CREDIT_WORKFLOW,
                credit,
                id=makeup_credit_workflow_id(done.credit_id),
                parent_close_policy=workflow.ParentClosePolicy.ABANDON,
            )

    async def _tell(self, request: ClosureInput, notice: ClosureNotice) -> None:
        recipient = notice.parent_id if notice.to == "parent" else notice.teacher_id
        await workflow.execute_activity_method(
            EmailActivities.send_email,
            SendEmail(
                template=f"closure_lessons_{notice.to}",
                dedup_key=f"closure-{request.closure_id}-{notice.to}-{recipient}",
                to=notice.to,
                parent_id=notice.parent_id,
                teacher_id=notice.teacher_id,
                context={"closed_days": notice.days, "lessons": notice.lines},
            ),
            start_to_close_timeout=EMAIL_TIMEOUT,
            retry_policy=EMAIL_RETRY,
        )
