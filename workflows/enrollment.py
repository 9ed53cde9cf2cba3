"""One durable workflow per enrollment: from the online form to an active student (or a clean close).

received → validated → account_created → teacher_assigned | waitlisted → demo_scheduled → awaiting_outcome →
active | withdrawn | cancelled | failed. Database steps are local activities that mirror the state into the
``enrollments`` row in their own transaction; Stripe, SMTP and the billing hand-off are regular activities.
Every step registers its undo first; a failure, a withdrawal or a cancellation runs the undos in reverse.
An active enrollment keeps its workflow while it has lessons, so the family can still cancel, and re-enrollment
decides its semester end: ``continue_next_semester`` (next semester's lessons booked) keeps it going, ``finish``
completes it after its last lesson (the place given back, billing told, the teacher emailed), and when nobody
decides it completes by itself ``semester_end_grace`` after the last lesson.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, CancelledError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities
    from activities.enrollment import BillingHandoffActivities, EnrollmentActivities
    from activities.stripe_lookup import StripeLookupActivities
    from core.contracts.billing import StudentStarted, StudentStopped
    from core.contracts.email import SendEmail
    from core.contracts.enrollment import (
        BILLING_OUTCOME_PATCH,
        ENROLLMENT_WORKFLOW,
        FAMILY_CONFIRMATION_PATCH,
        FAMILY_NOT_CONFIRMED,
        QUERY_STATUS,
        SEMESTER_END_PATCH,
        UPDATE_ASSIGN_TEACHER,
        UPDATE_CANCEL,
        UPDATE_CONFIRM_FAMILY,
        UPDATE_CONTINUE_NEXT_SEMESTER,
        UPDATE_DEMO_OUTCOME,
        UPDATE_FINISH,
        Accepted,
        AccountCreated,
        AssignTeacher,
        AssignTeacherRequest,
        BookDemo,
        CancelRequest,
        CheckPaymentMethod,
        ConfirmFamilyRequest,
        ContinueNextSemesterRequest,
        DemoBooking,
        DemoOutcome,
        DemoOutcomeRequest,
        EnrollmentInput,
        EnrollmentRef,
        FamilyCheck,
        FamilyDecision,
        FinishRequest,
        MirrorState,
        StatusView,
        StepView,
        TeacherAssignment,
        ValidatedEnrollment,
    )
    from core.temporal import ENROLLMENT_STATE
    from domain.enrollment_flow import accepts, demo_reminder_at
    from domain.enrollment_rules import EnrollmentAction, EnrollmentState

S = EnrollmentState
# Database steps (local activities) and remote calls (Stripe, SMTP, billing) retry with backoff until the
# service is back; non-retryable errors (business rules) stop at once. Undo steps give up after UNDO_ATTEMPTS
# so that a broken compensation is surfaced instead of retried forever.
DB_TIMEOUT, DB_FIRST_RETRY, DB_MAX_RETRY = timedelta(seconds=15), timedelta(milliseconds=200), timedelta(seconds=30)
REMOTE_TIMEOUT, REMOTE_FIRST_RETRY, REMOTE_MAX_RETRY = timedelta(seconds=30), timedelta(seconds=1), timedelta(minutes=1)
UNDO_ATTEMPTS = 20
OPERATOR_CANCEL = "cancelled by an operator"


class _Closing(Exception):
    """Ends the enrollment early (withdrawn, cancelled, failed): caught in ``run``, which compensates."""

    def __init__(self, state: EnrollmentState, reason: str) -> None:
        super().__init__(reason)
        self.state = state
        self.reason = reason


@workflow.defn(name=ENROLLMENT_WORKFLOW)
class EnrollmentWorkflow:
    def __init__(self) -> None:
        self._state = S.RECEIVED
        self._steps: list[StepView] = []
        self._failure_reason: str | None = None
        self._closing = False
        self._undo: list[str] = []
        self._ref = EnrollmentRef(enrollment_id=uuid.UUID(int=0))
        self._payment_method_id = ""
        self._plan: ValidatedEnrollment | None = None
        self._teacher_id: uuid.UUID | None = None
        self._lessons_end: datetime | None = None
        self._demo: DemoBooking | None = None
        self._account: AccountCreated | None = None
        self._outcome: DemoOutcome | None = None
        self._cancel: CancelRequest | None = None
        self._assign_request: AssignTeacherRequest | None = None
        self._assign_answer: TeacherAssignment | None = None
        self._family_decision: FamilyDecision | None = None
        self._next_semester: ContinueNextSemesterRequest | None = None
        self._finish: FinishRequest | None = None

    # --- messages ------------------------------------------------------------------------------------------

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> StatusView:
        return StatusView(
            state=self._state,
            steps=self._steps,
            teacher_id=self._teacher_id,
            demo_starts_at=self._demo.starts_at if self._demo else None,
            failure_reason=self._failure_reason,
        )

    def _refuse_unless(self, action: EnrollmentAction) -> None:
        reason = "the enrollment is closing" if self._closing else accepts(self._state, action)
        if reason is not None:
            raise ApplicationError(reason, type="NotAcceptedNow", non_retryable=True)

    @workflow.update(name=UPDATE_DEMO_OUTCOME)
    async def demo_outcome(self, request: DemoOutcomeRequest) -> Accepted:
        self._outcome = request.outcome
        return Accepted(state=self._state)

    @demo_outcome.validator
    def _check_demo_outcome(self, request: DemoOutcomeRequest) -> None:
        self._refuse_unless(EnrollmentAction.DEMO_OUTCOME)
        if self._outcome is not None:
            raise ApplicationError(f"the outcome {self._outcome.value} is already being processed", non_retryable=True)

    @workflow.update(name=UPDATE_CANCEL)
    async def cancel(self, request: CancelRequest) -> Accepted:
        self._cancel = request
        return Accepted(state=self._state)

    @cancel.validator
    def _check_cancel(self, request: CancelRequest) -> None:
        self._refuse_unless(EnrollmentAction.CANCEL)
        if self._cancel is not None:
            raise ApplicationError("the enrollment is already being cancelled", non_retryable=True)

    @workflow.update(name=UPDATE_CONFIRM_FAMILY)
    async def confirm_family(self, request: ConfirmFamilyRequest) -> Accepted:
        self._family_decision = request.decision
        return Accepted(state=self._state)

    @confirm_family.validator
    def _check_confirm_family(self, request: ConfirmFamilyRequest) -> None:
        self._refuse_unless(EnrollmentAction.CONFIRM_FAMILY)
        if self._family_decision is not None:
            raise ApplicationError("the family has already answered", non_retryable=True)

    @workflow.update(name=UPDATE_ASSIGN_TEACHER)
    async def assign_teacher(self, request: AssignTeacherRequest) -> Accepted:
        """Answers once the main loop has tried the office's choice: accepted, or refused with the reason."""
        self._assign_request, self._assign_answer = request, None
        await workflow.wait_condition(lambda: self._assign_answer is not None)
        answer = self._assign_answer
        assert answer is not None
        if answer.teacher_id is None:
            raise ApplicationError(answer.reason or "the teacher could not be assigned", non_retryable=True)
        return Accepted(state=self._state)

    @assign_teacher.validator
    def _check_assign_teacher(self, request: AssignTeacherRequest) -> None:
        self._refuse_unless(EnrollmentAction.ASSIGN_TEACHER)
        if self._assign_request is not None:
            raise ApplicationError("another teacher assignment is in progress", non_retryable=True)

    def _refuse_unless_active(self) -> None:
        if self._closing or self._state != S.ACTIVE:
            raise ApplicationError(
                f"the enrollment is {'closing' if self._closing else self._state.value}, not active",
                type="NotAcceptedNow",
                non_retryable=True,
            )
        if self._cancel is not None:
            raise ApplicationError("the enrollment is being cancelled", type="NotAcceptedNow", non_retryable=True)
        if self._finish is not None:
            raise ApplicationError("the enrollment is already finishing", type="NotAcceptedNow", non_retryable=True)

    @workflow.update(name=UPDATE_CONTINUE_NEXT_SEMESTER)
    async def continue_next_semester(self, request: ContinueNextSemesterRequest) -> Accepted:
        self._next_semester = request
        return Accepted(state=self._state)

    @continue_next_semester.validator
    def _check_continue_next_semester(self, request: ContinueNextSemesterRequest) -> None:
        self._refuse_unless_active()

    @workflow.update(name=UPDATE_FINISH)
    async def finish(self, request: FinishRequest) -> Accepted:
        self._finish = request
        return Accepted(state=self._state)

    @finish.validator
    def _check_finish(self, request: FinishRequest) -> None:
        self._refuse_unless_active()

    # --- the run -------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: EnrollmentInput) -> StatusView:
        self._ref = EnrollmentRef(enrollment_id=request.enrollment_id)
        # Carried in the input so the Stripe check runs alongside the first database step.
        self._payment_method_id = request.payment_method_id
        self._moved_to(S.RECEIVED)
        try:
            try:
                await self._enroll()
                await self._stay_active()
            except FailureError as error:  # a step failed for good (local activities raise their cause directly)
                if _cancelled(error):  # the workflow was cancelled (Temporal UI or CLI) while a step ran
                    raise _Closing(S.CANCELLED, OPERATOR_CANCEL) from error
                raise _Closing(S.FAILED, _reason(error)) from error
            except asyncio.CancelledError as cancelled:  # cancelled from the Temporal UI or CLI while waiting
                raise _Closing(S.CANCELLED, OPERATOR_CANCEL) from cancelled
        except _Closing as closing:
            await self._close(closing.state, closing.reason)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self.status()

    async def _enroll(self) -> None:
        self._plan, _ = await asyncio.gather(
            self._db(EnrollmentActivities.validate, self._ref),
            self._remote(
                StripeLookupActivities.check_payment_method,
                CheckPaymentMethod(enrollment_id=self._ref.enrollment_id, payment_method_id=self._payment_method_id),
            ),
        )
        self._moved_to(S.VALIDATED)
        self._raise_if_cancelled()
        self._undo.append("deactivate_student")
        if workflow.patched(FAMILY_CONFIRMATION_PATCH):
            self._account = await self._join_family()
        else:
            self._account = await self._db(EnrollmentActivities.create_account, self._ref)
        self._moved_to(S.ACCOUNT_CREATED)
        self._raise_if_cancelled()
        self._undo += ["release_teacher", "cancel_future_lessons"]
        await self._assign_and_book()
        await self._send_welcome()
        await self._await_outcome()
        await self._start_lessons()

    async def _join_family(self) -> AccountCreated:
        """A new family is made at once; an existing one (or any login at the address) is touched only once the
        address's owner has confirmed through the emailed link. A family appearing meanwhile asks again."""
        while True:
            check: FamilyCheck = await self._db(EnrollmentActivities.check_family, self._ref)
            if check.needs_confirmation:
                await self._await_family_confirmation(check)
            try:
                account: AccountCreated = await self._db(EnrollmentActivities.create_account, self._ref)
                return account
            except FailureError as error:
                if _failure_type(error) != FAMILY_NOT_CONFIRMED:
                    raise

    async def _await_family_confirmation(self, check: FamilyCheck) -> None:
        assert self._plan is not None
        self._moved_to(S.AWAITING_CONFIRMATION)
        await self._remote(
            EmailActivities.send_email,
            SendEmail(
                template="enrollment_confirm_family",
                dedup_key=f"enrollment:{self._ref.enrollment_id}:confirm-family",
                to="applicant",
                parent_id=check.parent_id,
                enrollment_id=self._ref.enrollment_id,
                include_confirmation=True,
            ),
        )
        timeout = self._plan.timings.family_confirmation_timeout
        answered = await self._wait_for(lambda: self._family_decision is not None, timeout)
        self._raise_if_cancelled()
        if not answered:
            raise _Closing(S.CANCELLED, f"the family did not confirm within {timeout.days or 1} day(s)")
        if self._family_decision == FamilyDecision.decline:
            raise _Closing(S.CANCELLED, "the family declined the enrollment")
        await self._db(EnrollmentActivities.accept_family, self._ref)

    async def _assign_and_book(self) -> None:
        """Assign a teacher and book the demo; when nobody fits, wait on the waitlist (office or freed place)."""
        assert self._plan is not None
        timings = self._plan.timings
        chosen: uuid.UUID | None = None
        waitlisted_until: datetime | None = None
        while True:
            assignment: TeacherAssignment = await self._db(
                EnrollmentActivities.assign_teacher,
                AssignTeacher(enrollment_id=self._ref.enrollment_id, teacher_id=chosen),
            )
            if assignment.teacher_id is not None:
                self._teacher_id = assignment.teacher_id
                self._moved_to(S.TEACHER_ASSIGNED)
                self._raise_if_cancelled()
                booking: DemoBooking = await self._db(
                    EnrollmentActivities.book_demo, BookDemo(enrollment_id=self._ref.enrollment_id)
                )
                if booking.lesson_id is not None:
                    self._answer_assignment(assignment)
                    self._demo = booking
                    self._moved_to(S.DEMO_SCHEDULED)
                    return
                self._teacher_id = None  # no slot: the step released the place and waitlisted the enrollment
                assignment = TeacherAssignment(teacher_id=None, reason="the teacher has no demo slot in the windows")
            self._answer_assignment(assignment)
            self._moved_to(S.WAITLISTED)
            if waitlisted_until is None:
                waitlisted_until = workflow.now() + timings.waitlist_timeout
                await self._email("enrollment_waitlisted", "waitlisted", to="parent")
            chosen = await self._wait_on_waitlist(waitlisted_until)

    def _answer_assignment(self, assignment: TeacherAssignment) -> None:
        if self._assign_request is not None:
            self._assign_answer, self._assign_request = assignment, None

    async def _wait_on_waitlist(self, until: datetime) -> uuid.UUID | None:
        """The office's choice of teacher, or None when it is time to look again for a freed place."""
        assert self._plan is not None
        remaining = until - workflow.now()
        if remaining <= timedelta(0):
            days = self._plan.timings.waitlist_timeout.days
            raise _Closing(S.FAILED, f"no teacher became available within {days} day(s) on the waiting list")
        wait = min(remaining, self._plan.timings.waitlist_recheck_interval)
        await self._wait_for(lambda: self._assign_request is not None, wait)
        self._raise_if_cancelled()
        return self._assign_request.teacher_id if self._assign_request else None

    async def _await_outcome(self) -> None:
        """Wait for the teacher's outcome, reminding the parent before and the teacher after the demo; silence
        closes as withdrawn. A no-show books one more demo."""
        rebooked = False
        while True:
            outcome = await self._outcome_or_timeout()
            self._outcome = None
            if outcome == DemoOutcome.continue_:
                return
            if outcome == DemoOutcome.withdraw:
                raise _Closing(S.WITHDRAWN, "the family withdrew after the demo lesson")
            if rebooked:
                await self._db(EnrollmentActivities.mark_demo_no_show, self._ref)
                raise _Closing(S.WITHDRAWN, "the student missed the rescheduled demo lesson too")
            rebooked = True
            await self._rebook_demo()

    async def _rebook_demo(self) -> None:
        assert self._demo is not None
        booking: DemoBooking = await self._db(
            EnrollmentActivities.book_demo,
            BookDemo(enrollment_id=self._ref.enrollment_id, replacing_lesson_id=self._demo.lesson_id),
        )
        if booking.lesson_id is None:
            self._teacher_id = None
            await self._assign_and_book()
        else:
            self._demo = booking
            self._moved_to(S.DEMO_SCHEDULED)
        tag = f"rebooked-{self._demo.lesson_id}"
        await asyncio.gather(
            self._email("enrollment_demo_rescheduled", tag, to="parent"),
            self._email("enrollment_demo_rescheduled_teacher", f"{tag}-teacher", to="teacher"),
        )

    async def _outcome_or_timeout(self) -> DemoOutcome:
        assert self._demo is not None
        assert self._demo.starts_at is not None
        assert self._demo.ends_at is not None
        assert self._plan is not None
        timings, demo = self._plan.timings, self._demo
        assert demo.starts_at is not None
        assert demo.ends_at is not None
        events: list[tuple[datetime, str]] = [
            (demo.ends_at, "demo_over"),
            (demo.ends_at + timings.teacher_outcome_reminder_after, "remind_teacher"),
            (demo.ends_at + timings.outcome_timeout_after_demo, "give_up"),
        ]
        remind_parent_at = demo_reminder_at(workflow.now(), demo.starts_at, timings.demo_reminder_before)
        if remind_parent_at is not None:
            events.append((remind_parent_at, "remind_parent"))
        for at, event in sorted(events):
            if await self._wait_for(lambda: self._outcome is not None, at - workflow.now()):
                break
            self._raise_if_cancelled()
            await self._on_outcome_timer(event)
        self._raise_if_cancelled()
        assert self._outcome is not None
        return self._outcome

    async def _on_outcome_timer(self, event: str) -> None:
        lesson = self._demo.lesson_id if self._demo else None
        if event == "remind_parent":
            await self._email("enrollment_demo_reminder", f"demo-reminder-{lesson}", to="parent")
        elif event == "demo_over" and self._state == S.DEMO_SCHEDULED:
            await self._mirror(S.AWAITING_OUTCOME)
        elif event == "remind_teacher":
            await self._email("enrollment_outcome_reminder", f"outcome-reminder-{lesson}", to="teacher")
        elif event == "give_up":
            raise _Closing(S.WITHDRAWN, "no outcome was reported after the demo lesson")

    async def _start_lessons(self) -> None:
        assert self._account is not None
        assert self._teacher_id is not None
        assert self._demo is not None
        assert self._plan is not None
        lessons = await self._db(EnrollmentActivities.book_regular_lessons, self._ref)
        self._lessons_end = lessons.last_ends_at
        self._moved_to(S.ACTIVE)
        self._undo.append("stop_billing")
        plan = self._plan
        started = StudentStarted(
            enrollment_id=self._ref.enrollment_id,
            parent_id=self._account.parent_id,
            student_id=self._account.student_id,
            teacher_id=self._teacher_id,
            instrument=plan.instrument,
            lesson_minutes=plan.lesson_minutes,
            billing_interval=plan.billing_interval,
            stripe_payment_method_id=plan.payment_method_id,
            first_regular_lesson_at=lessons.first_starts_at or self._demo.ends_at,
        )
        if workflow.patched(BILLING_OUTCOME_PATCH):
            await self._hand_over(started)
        else:
            await self._remote(BillingHandoffActivities.start_billing, started)
        first = lessons.first_starts_at
        await self._email(
            "enrollment_active",
            "active",
            to="parent",
            context={"lesson_count": lessons.count, "first_lesson_at_local": first.isoformat() if first else "-"},
            local_times=("first_lesson_at_local",),
        )

    async def _hand_over(self, started: StudentStarted) -> None:
        """Billing answers whether the student's billing started; a refusal (no rate, card refused, billing's
        retries spent) closes the enrollment as failed, its steps undone, with billing's reason."""
        assert self._plan is not None
        timings = self._plan.timings
        answer = await workflow.execute_activity_method(
            BillingHandoffActivities.start_billing,
            started.model_copy(update={"await_outcome": True}),
            start_to_close_timeout=timings.billing_start_timeout,
            heartbeat_timeout=timings.billing_start_heartbeat * 3,
            retry_policy=RetryPolicy(initial_interval=REMOTE_FIRST_RETRY, maximum_interval=REMOTE_MAX_RETRY),
        )
        if answer is None or answer.status != "started":
            reason = answer.reason if answer is not None else None
            raise _Closing(S.FAILED, f"billing could not start: {reason or 'no reason given'}")

    async def _stay_active(self) -> None:
        """While it has lessons the family may still cancel. Re-enrollment then continues it into the next
        semester or finishes it; nobody deciding completes it ``semester_end_grace`` after the last lesson."""
        if not workflow.patched(SEMESTER_END_PATCH):  # started before semester ends: over at the last lesson
            end = self._lessons_end or workflow.now()
            await self._wait_for(lambda: self._cancel is not None, end - workflow.now())
            self._raise_if_cancelled()
            return
        assert self._plan is not None
        grace = self._plan.timings.semester_end_grace
        while True:
            last = self._lessons_end or workflow.now()
            await self._wait_for(self._semester_decided, last + grace - workflow.now())
            self._raise_if_cancelled()
            if self._next_semester is None:
                break
            self._lessons_end, self._next_semester = self._next_semester.lessons_end, None
        if self._finish is not None:
            last = self._finish.last_lesson_ends_at or workflow.now()
            await self._wait_for(lambda: False, last - workflow.now())  # until the last lesson is over
            self._raise_if_cancelled()
        await self._complete(last)

    def _semester_decided(self) -> bool:
        return self._next_semester is not None or self._finish is not None

    async def _complete(self, last_lesson_ends_at: datetime) -> None:
        """The lessons ran out: billing stops after the last one, the place is given back, the row completed."""
        assert self._account is not None
        self._closing = True
        stopped = StudentStopped(
            enrollment_id=self._ref.enrollment_id,
            parent_id=self._account.parent_id,
            student_id=self._account.student_id,
            reason="the lessons have ended",
            last_lesson_ends_at=last_lesson_ends_at,
        )
        await self._remote(BillingHandoffActivities.stop_billing, stopped)
        for step in (
            EnrollmentActivities.cancel_future_lessons,
            EnrollmentActivities.release_teacher,
            EnrollmentActivities.deactivate_student,
        ):
            await self._db(step, self._ref)
        await self._mirror(S.COMPLETED)
        # The enrollment no longer names its teacher once the place is given back: the workflow still knows them.
        await asyncio.gather(
            self._email("semester_end_teacher", "completed-teacher", to="teacher", teacher_id=self._teacher_id),
            self._email("semester_end_parent", "completed-parent", to="parent"),
        )

    # --- closing -------------------------------------------------------------------------------------------

    async def _close(self, state: EnrollmentState, reason: str) -> None:
        """Undo what was made, in reverse; a failed undo is logged and surfaced, never swallowed."""
        self._closing = True
        self._answer_assignment(TeacherAssignment(teacher_id=None, reason=f"the enrollment is closing: {reason}"))
        failures = []
        for undo in reversed(self._undo):
            try:
                await self._run_undo(undo, reason)
            except FailureError as error:
                workflow.logger.error("compensation %s failed: %s", undo, _reason(error))
                failures.append(f"{undo}: {_reason(error)}")
        if failures:
            reason = f"{reason}; compensation failed ({'; '.join(failures)}), see the workflow's history"
        self._failure_reason = reason
        await self._mirror(state, reason)
        if self._account is not None:
            closed_as = {S.FAILED: "closed"}.get(state, state.value)
            context = {"closed_as": closed_as, "reason": reason}
            await self._email("enrollment_closed", "closed", to="parent", context=context)
        if failures:
            raise ApplicationError(reason, type="CompensationFailed", non_retryable=True)

    async def _run_undo(self, undo: str, reason: str) -> None:
        if undo == "stop_billing":
            assert self._account is not None
            stopped = StudentStopped(
                enrollment_id=self._ref.enrollment_id,
                parent_id=self._account.parent_id,
                student_id=self._account.student_id,
                reason=reason,
                # Nothing is billed after the cancellation (older histories stop billing the old way).
                last_lesson_ends_at=workflow.now() if workflow.patched(SEMESTER_END_PATCH) else None,
            )
            await self._remote(BillingHandoffActivities.stop_billing, stopped, attempts=UNDO_ATTEMPTS)
            return
        steps: dict[str, Callable[..., Awaitable[object]]] = {
            "cancel_future_lessons": EnrollmentActivities.cancel_future_lessons,
            "release_teacher": EnrollmentActivities.release_teacher,
            "deactivate_student": EnrollmentActivities.deactivate_student,
        }
        await self._db(steps[undo], self._ref, attempts=UNDO_ATTEMPTS)

    # --- plumbing ------------------------------------------------------------------------------------------

    def _moved_to(self, state: EnrollmentState) -> None:
        self._state = state
        self._steps.append(StepView(state=state.value, at=workflow.now()))
        workflow.upsert_search_attributes([ENROLLMENT_STATE.value_set(state.value)])
        workflow.set_current_details(current_details(state, self._demo.starts_at if self._demo else None))

    def _raise_if_cancelled(self) -> None:
        if self._cancel is not None:
            raise _Closing(S.CANCELLED, self._cancel.reason)

    async def _wait_for(self, condition: Callable[[], bool], within: timedelta) -> bool:
        """True when ``condition`` (or a cancellation) came first, False when ``within`` elapsed (a durable timer)."""
        if condition() or self._cancel is not None:
            return True
        if within <= timedelta(0):
            return False
        try:
            await workflow.wait_condition(lambda: condition() or self._cancel is not None, timeout=within)
        except TimeoutError:
            return False
        return True

    async def _mirror(self, state: EnrollmentState, reason: str | None = None) -> None:
        await self._db(
            EnrollmentActivities.mirror_state,
            MirrorState(enrollment_id=self._ref.enrollment_id, state=state.value, failure_reason=reason),
        )
        self._moved_to(state)

    async def _send_welcome(self) -> None:
        await asyncio.gather(
            self._email("enrollment_welcome_parent", "welcome-parent", to="parent", include_login=True),
            self._email("enrollment_new_student_teacher", "welcome-teacher", to="teacher"),
        )

    async def _email(
        self,
        template: str,
        key: str,
        *,
        to: str,
        context: dict[str, Any] | None = None,
        include_login: bool = False,
        local_times: tuple[str, ...] = (),
        teacher_id: uuid.UUID | None = None,
    ) -> None:
        await self._remote(
            EmailActivities.send_email,
            SendEmail(
                template=template,
                dedup_key=f"enrollment:{self._ref.enrollment_id}:{key}",
                to=to,
                context=context or {},
                enrollment_id=self._ref.enrollment_id,
                teacher_id=teacher_id,
                include_login=include_login,
                local_times=list(local_times),
            ),
        )

    async def _db(self, step: Callable[..., Awaitable[Any]], argument: object, attempts: int = 0) -> Any:
        """A database step as a local activity (no server round trip); ``attempts`` 0 means until it works."""
        return await workflow.execute_local_activity_method(
            step,
            argument,
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=DB_FIRST_RETRY, maximum_interval=DB_MAX_RETRY, maximum_attempts=attempts
            ),
        )

    async def _remote(self, step: Callable[..., Awaitable[Any]], argument: object, attempts: int = 0) -> Any:
        """A call to Stripe, SMTP or another workflow as a regular activity, with its own retries."""
        return await workflow.execute_activity_method(
            step,
            argument,
            start_to_close_timeout=REMOTE_TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=REMOTE_FIRST_RETRY, maximum_interval=REMOTE_MAX_RETRY, maximum_attempts=attempts
            ),
        )


def _reason(error: FailureError) -> str:
    cause = error.cause if isinstance(error, ActivityError) else error
    return cause.message if isinstance(cause, FailureError) else str(cause or error)


def _failure_type(error: FailureError) -> str | None:
    cause = error.cause if isinstance(error, ActivityError) else error
    return cause.type if isinstance(cause, ApplicationError) else None


def _cancelled(error: FailureError) -> bool:
    return isinstance(error, CancelledError) or isinstance(getattr(error, "cause", None), CancelledError)


# What the Temporal UI shows for a running enrollment: its state and what it waits for (no personal data).
_NEXT_STEP: dict[EnrollmentState, str] = {
    S.RECEIVED: "checking the application",
    S.VALIDATED: "creating the family's account",
    S.AWAITING_CONFIRMATION: "waiting for the family to confirm by email",
    S.ACCOUNT_CREATED: "finding a teacher",
    S.TEACHER_ASSIGNED: "booking the demo lesson",
    S.WAITLISTED: "waiting for a teacher to be free",
    S.DEMO_SCHEDULED: "waiting for the demo's outcome",
    S.AWAITING_OUTCOME: "waiting for the teacher's outcome",
    S.ACTIVE: "weekly lessons running",
}


def current_details(state: EnrollmentState, demo_at: datetime | None) -> str:
    """``demo_scheduled: demo 2026-09-08 16:00 UTC, waiting for the demo's outcome``; a closed state alone."""
    step = _NEXT_STEP.get(state)
    demo = f"demo {demo_at:%Y-%m-%d %H:%M} UTC, " if demo_at is not None and state == S.DEMO_SCHEDULED else ""
    return f"{state.value}: {demo}{step}" if step else f"{state.value}: closed"
