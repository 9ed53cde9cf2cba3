"""A family's re-enrollment for the next semester (``ReenrollmentWorkflow``) and the daily opening
(``ReenrollmentOpeningWorkflow``).

Offers are built once (an activity mirrors them in ``reenrollment_offers``) and emailed to the family; the family
(or the office) answers per student through the ``answer`` update until the deadline, with one reminder before it.
At the deadline the school's default applies to the unanswered; returning students get next semester's lessons on
the same enrollment, their enrollment's workflow is told (``continue_next_semester``) and billing too
(``lessons_booked``); the others' enrollments ``finish`` after their last lesson. The family gets a summary once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities
    from activities.enrollment import BillingHandoffActivities, EnrollmentActivities
    from activities.reenrollment import ReenrollmentActivities
    from core.contracts.billing import LessonsBooked, StudentStopped
    from core.contracts.email import SendEmail
    from core.contracts.enrollment import BookNextSemester, EnrollmentRef, MirrorState, NextSemesterLessons
    from core.contracts.reenrollment import (
        QUERY_STATUS,
        REENROLLMENT_OPENING_WORKFLOW,
        REENROLLMENT_WORKFLOW,
        UPDATE_ANSWER,
        AnswerRequest,
        BuildOffers,
        ContinueEnrollment,
        FinishEnrollment,
        FinishOutcome,
        OfferAnswer,
        OfferStatus,
        OpenedReenrollments,
        OpenReenrollment,
        RecordAnswers,
        RecordOutcome,
        ReenrollmentInput,
        ReenrollmentStatus,
    )
    from core.page_links import reenrollment_path
    from core.temporal import REENROLLMENT_STATE
    from domain.reenrollment import decided_returning, reminder_at

State = Literal["opening", "open", "answered", "closing", "closed"]
TIMEOUT = timedelta(seconds=30)
RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))


@workflow.defn(name=REENROLLMENT_WORKFLOW)
class ReenrollmentWorkflow:
    @workflow.init
    def __init__(self, request: ReenrollmentInput) -> None:
        self._request = request
        self._status = ReenrollmentStatus(state="opening", deadline=request.deadline, default=request.default)
        self._next_semester_name = ""

    # --- messages ------------------------------------------------------------------------------------------

    @workflow.query(name=QUERY_STATUS)
    def status(self) -> ReenrollmentStatus:
        return self._status

    @workflow.update(name=UPDATE_ANSWER)
    async def answer(self, request: AnswerRequest) -> ReenrollmentStatus:
        answered_at = workflow.now()
        for given in request.answers:
            offer = self._find(given.enrollment_id)
            assert offer is not None  # the validator checked
            offer.returning, offer.answered_by, offer.answered_at = given.returning, request.answered_by, answered_at
        self._mark_answered()
        await self._run(
            ReenrollmentActivities.record_answers,
            RecordAnswers(
                next_semester_id=self._request.next_semester_id,
                answers=request.answers,
                answered_by=request.answered_by,
                actor_user_id=request.actor_user_id,
                answered_at=answered_at,
            ),
        )
        return self._status

    @answer.validator
    def _check_answer(self, request: AnswerRequest) -> None:
        if self._status.state == "opening":
            raise ApplicationError("the offers are being prepared; try again in a moment", non_retryable=True)
        if self._status.state not in ("open", "answered") or workflow.now() >= self._request.deadline:
            raise ApplicationError("re-enrollment is closed: the deadline has passed", non_retryable=True)
        for given in request.answers:
            if self._find(given.enrollment_id) is None:
                raise ApplicationError(f"no offer for enrollment {given.enrollment_id}", non_retryable=True)

    def _find(self, enrollment_id: object) -> OfferStatus | None:
        return next((o for o in self._status.offers if o.offer.enrollment_id == enrollment_id), None)

    # --- the run -------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, request: ReenrollmentInput) -> ReenrollmentStatus:
        built = await self._run(
            ReenrollmentActivities.build_offers,
            BuildOffers(
                parent_id=request.parent_id,
                semester_id=request.semester_id,
                next_semester_id=request.next_semester_id,
                deadline=request.deadline,
                default=request.default,
            ),
        )
        self._next_semester_name = built.next_semester_name
        self._status.offers = [OfferStatus(offer=offer) for offer in built.offers]
        if not self._status.offers:
            self._moved_to("closed")
            return self._status
        self._moved_to("open")
        deadline = {"deadline_local": request.deadline.isoformat()}
        await self._email("reenrollment_offer", "offer", deadline)
        remind = reminder_at(workflow.now(), request.deadline, request.reminder_before)
        if remind is not None and not await self._wait(self._all_answered, remind):
            await self._email("reenrollment_reminder", "reminder", deadline)
        await self._wait(lambda: False, request.deadline)
        self._moved_to("closing")
        await workflow.wait_condition(workflow.all_handlers_finished)
        await self._apply_decisions()
        self._moved_to("closed")
        return self._status

    async def _apply_decisions(self) -> None:
        request = self._request
        unanswered = [o for o in self._status.offers if o.returning is None]
        for offer in unanswered:
            offer.returning, offer.answered_by = decided_returning(None, request.default), "default"
            offer.answered_at = workflow.now()
        if unanswered:
            await self._run(
                ReenrollmentActivities.record_answers,
                RecordAnswers(
                    next_semester_id=request.next_semester_id,
                    answers=[
                        OfferAnswer(enrollment_id=o.offer.enrollment_id, returning=bool(o.returning))
                        for o in unanswered
                    ],
                    answered_by="default",
                    answered_at=workflow.now(),
                ),
            )
        for offer in self._status.offers:
            if offer.returning:
                await self._continue(offer)
            else:
                await self._finish(offer)
        returning = sum(1 for o in self._status.offers if o.outcome == "booked")
        context = {"returning_count": returning, "ending_count": len(self._status.offers) - returning}
        await self._email("reenrollment_summary", "summary", context)

    async def _continue(self, offer: OfferStatus) -> None:
        request, enrollment_id = self._request, offer.offer.enrollment_id
        booking = BookNextSemester(
            enrollment_id=enrollment_id,
            next_semester_id=request.next_semester_id,
            weekday=offer.offer.weekday,
            local_time=offer.offer.local_time,
        )
        try:
            lessons: NextSemesterLessons = await self._run(EnrollmentActivities.book_next_semester, booking)
        except ActivityError as error:  # refused for good: the enrollment was cancelled or closed meanwhile
            workflow.logger.warning("next semester not booked for %s: %s", enrollment_id, error.cause)
            offer.outcome = "unavailable"
            await self._record(offer)
            return
        if lessons.first_starts_at is None or lessons.last_ends_at is None:
            offer.outcome = "unavailable"  # no week of the next semester could be booked: the lessons end
            await self._record(offer)
            await self._finish(offer, record=False)
            return
        await self._run(
            ReenrollmentActivities.continue_enrollment,
            ContinueEnrollment(enrollment_id=enrollment_id, lessons_end=lessons.last_ends_at),
        )
        await self._run(
            BillingHandoffActivities.lessons_booked,
            LessonsBooked(
                enrollment_id=enrollment_id,
                parent_id=request.parent_id,
                first_lesson_starts_at=lessons.first_starts_at,
                last_lesson_ends_at=lessons.last_ends_at,
            ),
        )
        offer.outcome = "booked"
        await self._record(offer)

    async def _finish(self, offer: OfferStatus, record: bool = True) -> None:
        finish = FinishEnrollment(enrollment_id=offer.offer.enrollment_id)
        outcome: FinishOutcome = await self._run(ReenrollmentActivities.finish_enrollment, finish)
        if not outcome.running and outcome.state == "active":
            await self._complete_without_workflow(offer, outcome.last_lesson_ends_at or workflow.now())
        if record:
            offer.outcome = "finished"
            await self._record(offer)

    async def _complete_without_workflow(self, offer: OfferStatus, last_lesson_ends_at: datetime) -> None:
        """An active enrollment whose workflow ended at its last lesson (started before semester ends): its
        semester end, as its workflow would do it now, with the same emails' keys."""
        enrollment_id = offer.offer.enrollment_id
        ref = EnrollmentRef(enrollment_id=enrollment_id)
        await self._run(
            BillingHandoffActivities.stop_billing,
            StudentStopped(
                enrollment_id=enrollment_id,
                parent_id=self._request.parent_id,
                student_id=offer.offer.student_id,
                reason="the lessons have ended",
                last_lesson_ends_at=last_lesson_ends_at,
            ),
        )
        for step in (
            EnrollmentActivities.cancel_future_lessons,
            EnrollmentActivities.release_teacher,
            EnrollmentActivities.deactivate_student,
        ):
            await self._run(step, ref)
        await self._run(EnrollmentActivities.mirror_state, MirrorState(enrollment_id=enrollment_id, state="completed"))
        for template, to in (("semester_end_teacher", "teacher"), ("semester_end_parent", "parent")):
            await self._run(
                EmailActivities.send_email,
                SendEmail(
                    template=template,
                    dedup_key=f"enrollment:{enrollment_id}:completed-{to}",
                    to=to,
                    enrollment_id=enrollment_id,
                    teacher_id=offer.offer.teacher_id,
                ),
            )

    async def _record(self, offer: OfferStatus) -> None:
        assert offer.outcome != "open"
        await self._run(
            ReenrollmentActivities.record_outcome,
            RecordOutcome(
                enrollment_id=offer.offer.enrollment_id,
                next_semester_id=self._request.next_semester_id,
                outcome=offer.outcome,
            ),
        )

    # --- plumbing ------------------------------------------------------------------------------------------

    def _all_answered(self) -> bool:
        return all(o.returning is not None for o in self._status.offers)

    def _mark_answered(self) -> None:
        if self._status.state == "open" and self._all_answered():
            self._moved_to("answered")

    def _moved_to(self, state: State) -> None:
        self._status.state = state
        keyword = "closed" if state in ("closing", "closed") else "answered" if state == "answered" else "open"
        workflow.upsert_search_attributes([REENROLLMENT_STATE.value_set(keyword)])
        answered = sum(o.returning is not None for o in self._status.offers)
        workflow.set_current_details(f"{state}: {answered} of {len(self._status.offers)} offers answered")

    async def _wait(self, condition: Callable[[], bool], until: datetime) -> bool:
        """True when ``condition`` held before ``until``, False at ``until`` (a durable timer)."""
        remaining = until - workflow.now()
        if condition():
            return True
        if remaining <= timedelta(0):
            return False
        try:
            await workflow.wait_condition(condition, timeout=remaining)
        except TimeoutError:
            return False
        return True

    async def _email(self, template: str, key: str, context: dict[str, Any]) -> None:
        request = self._request
        await self._run(
            EmailActivities.send_email,
            SendEmail(
                template=template,
                dedup_key=f"reenrollment:{request.parent_id}:{request.semester_id}:{key}",
                to="parent",
                parent_id=request.parent_id,
                context={
                    **context,
                    "next_semester_name": self._next_semester_name,
                    "offer_count": len(self._status.offers),
                    "reenrollment_path": reenrollment_path(request.semester_id),
                },
                local_times=["deadline_local"] if "deadline_local" in context else [],
            ),
        )

    async def _run(self, step: Callable[..., Awaitable[Any]], argument: object) -> Any:
        return await workflow.execute_activity_method(
            step, argument, start_to_close_timeout=TIMEOUT, retry_policy=RETRY
        )


@workflow.defn(name=REENROLLMENT_OPENING_WORKFLOW)
class ReenrollmentOpeningWorkflow:
    """Started daily by a Temporal Schedule: opens re-enrollment for the semesters ending within the lead time."""

    @workflow.run
    async def run(self, request: OpenReenrollment) -> OpenedReenrollments:
        opened: OpenedReenrollments = await workflow.execute_activity_method(
            ReenrollmentActivities.open_due,
            request,
            start_to_close_timeout=timedelta(minutes=10),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10),
        )
        return opened
