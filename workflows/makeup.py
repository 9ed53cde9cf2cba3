"""A make-up credit's life (``MakeupCreditWorkflow``) and a cancelled lesson's notices (``LessonCancellationWorkflow``).

The credit's workflow waits for the reminder point, reminds the family once per expiry date, and at the expiry
asks the database to expire the credit (a conditional update: a booking committed first wins). The API tells it
of a booking (``record_use``); the office extends or voids the credit through updates whose validators refuse
what ``domain.makeups`` does not allow, and whose handlers change the row and answer with the new state.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities
    from activities.makeup import MakeupActivities
    from core.contracts.email import SendEmail
    from core.contracts.makeup import (
        LESSON_CANCELLATION_WORKFLOW,
        MAKEUP_CREDIT_WORKFLOW,
        QUERY_STATE,
        UPDATE_EXTEND,
        UPDATE_RECORD_USE,
        UPDATE_VOID,
        CreditChange,
        CreditEvent,
        CreditRef,
        CreditRow,
        ExtendCredit,
        LessonCancellationInput,
        MakeupCreditInput,
        MakeupCreditState,
        RecordUse,
        VoidCredit,
    )
    from domain.makeups import CreditStatus, extension_problem, reminder_at, void_problem

DB_TIMEOUT = timedelta(seconds=10)
DB_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
EMAIL_TIMEOUT = timedelta(seconds=30)
EMAIL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))


async def _send(email: SendEmail) -> None:
    await workflow.execute_activity_method(
        EmailActivities.send_email, email, start_to_close_timeout=EMAIL_TIMEOUT, retry_policy=EMAIL_RETRY
    )


@workflow.defn(name=MAKEUP_CREDIT_WORKFLOW)
class MakeupCreditWorkflow:
    @workflow.init
    def __init__(self, request: MakeupCreditInput) -> None:
        self._request = request
        self._state = MakeupCreditState(credit_id=request.credit_id, expires_at=request.expires_at)
        self._wake = False

    @workflow.run
    async def run(self, request: MakeupCreditInput) -> MakeupCreditState:
        if request.announce:
            await self._email("makeup_credit_granted", f"makeup-credit-{request.credit_id}-granted")
        while self._state.status == CreditStatus.available:
            now, expires = workflow.now(), self._state.expires_at
            remind = reminder_at(expires, request.reminder_before)
            reminder_due = remind is not None and self._state.reminded_for != expires
            if reminder_due and remind is not None and remind <= now < expires:
                await self._remind()
                continue
            wake_at = remind if reminder_due and remind is not None and now < remind else expires
            self._wake = False
            upcoming = "reminder" if wake_at < expires else "expiry"
            workflow.set_current_details(f"available until {expires:%Y-%m-%d}; next: {upcoming} {wake_at:%Y-%m-%d}")
            with contextlib.suppress(TimeoutError):
                await workflow.wait_condition(
                    lambda: self._wake or self._state.status != CreditStatus.available,
                    timeout=max(wake_at - now, timedelta(0)),
                )
            if self._state.status == CreditStatus.available and not self._wake and workflow.now() >= expires:
                self._apply(await self._change(CreditChange(credit_id=request.credit_id, action="expire")))
        workflow.set_current_details(f"{self._state.status}: nothing left to do")
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._state

    @workflow.query(name=QUERY_STATE)
    def state(self) -> MakeupCreditState:
        return self._state

    @workflow.update(name=UPDATE_RECORD_USE)
    async def record_use(self, message: RecordUse) -> MakeupCreditState:
        if self._state.used_lesson_id != message.lesson_id:
            self._state.status, self._state.used_lesson_id = CreditStatus.used, message.lesson_id
            self._event("used", str(message.lesson_id))
        return self._state

    @record_use.validator
    def _validate_use(self, message: RecordUse) -> None:
        if self._state.used_lesson_id not in (None, message.lesson_id):
            raise ValueError("the credit is already used for another lesson")

    @workflow.update(name=UPDATE_EXTEND)
    async def extend(self, message: ExtendCredit) -> MakeupCreditState:
        change = CreditChange(credit_id=self._state.credit_id, action="extend", by=message.by)
        return self._answer(await self._change(change), "extended", f"by {message.by}: {message.reason}")

    @extend.validator
    def _validate_extend(self, message: ExtendCredit) -> None:
        problem = extension_problem(self._state.status, message.by)
        if problem is not None:
            raise ValueError(problem)

    @workflow.update(name=UPDATE_VOID)
    async def void(self, message: VoidCredit) -> MakeupCreditState:
        change = CreditChange(credit_id=self._state.credit_id, action="void")
        return self._answer(await self._change(change), "voided", message.reason)

    @void.validator
    def _validate_void(self, message: VoidCredit) -> None:
        problem = void_problem(self._state.status)
        if problem is not None:
            raise ValueError(problem)

    # --- helpers -------------------------------------------------------------------------------------------

    def _answer(self, row: CreditRow, kind: str, detail: str) -> MakeupCreditState:
        self._apply(row)
        if not row.changed:
            # The row moved on first (a booking, the expiry): nothing was changed; the caller hears why.
            raise ApplicationError(f"the credit is {row.status}", type="CreditNotAvailable", non_retryable=True)
        self._event(kind, detail[:200])
        self._wake = True
        return self._state

    def _apply(self, row: CreditRow) -> None:
        if row.status != self._state.status:
            self._event(row.status)
        self._state.status, self._state.expires_at = row.status, row.expires_at
        self._state.used_lesson_id = row.used_lesson_id or self._state.used_lesson_id

    def _event(self, kind: str, detail: str = "") -> None:
        self._state.events.append(CreditEvent(at=workflow.now(), kind=kind, detail=detail))

    async def _change(self, change: CreditChange) -> CreditRow:
        return await workflow.execute_local_activity_method(
            MakeupActivities.change, change, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
        )

    async def _remind(self) -> None:
        credit_id = self._state.credit_id
        await self._email(
            "makeup_credit_reminder", f"makeup-credit-{credit_id}-reminder-{int(self._state.expires_at.timestamp())}"
        )
        await workflow.execute_local_activity_method(
            MakeupActivities.mark_reminded,
            CreditRef(credit_id=credit_id),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._state.reminded_for = self._state.expires_at
        self._event("reminded")

    async def _email(self, template: str, dedup_key: str) -> None:
        await _send(
            SendEmail(
                template=template,
                dedup_key=dedup_key,
                to="parent",
                parent_id=self._request.parent_id,
                teacher_id=self._request.teacher_id,
                context={"credit_expires_at_local": self._state.expires_at.isoformat()},
                local_times=["credit_expires_at_local"],
            )
        )


@workflow.defn(name=LESSON_CANCELLATION_WORKFLOW)
class LessonCancellationWorkflow:
    """Tells the family and the teacher what a cancellation or an excused absence means (a credit, or the lesson
    forfeited), once each."""

    @workflow.run
    async def run(self, request: LessonCancellationInput) -> None:
        context = {
            "lesson_at_local": request.starts_at.isoformat(),
            "credit_expires_at_local": request.credit_expires_at.isoformat() if request.credit_expires_at else "",
        }
        fragments = {
            "outcome": f"lesson_outcome_{request.outcome}",
            "outcome_title": f"lesson_outcome_title_{request.outcome}",
            "cancelled_by_words": f"cancelled_by_{request.cancelled_by}",
        }
        # An excused absence has its own words (lesson_excused_*); the dedup keys stay one per lesson.
        kind = "excused" if request.excused else "cancelled"
        await asyncio.gather(
            *(
                _send(
                    SendEmail(
                        template=f"lesson_{kind}_{to}",
                        dedup_key=f"lesson-cancelled-{request.lesson_id}-{to}",
                        to=to,
                        parent_id=request.parent_id,
                        teacher_id=request.teacher_id,
                        context=context,
                        local_times=list(context),
                        fragments=fragments,
                    )
                )
                for to in ("parent", "teacher")
            )
        )
