"""The re-enrollment workflow's steps: the offers (and their mirror in ``reenrollment_offers``), the answers, and
telling each enrollment's workflow what was decided; and the daily opening.

Each step is idempotent: an offer row is unique per enrollment and next semester (run again, the step finds its
rows), answers and outcomes overwrite, and the enrollment's updates refuse a second decision.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, union_all, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from core.contracts.enrollment import (
    UPDATE_CONTINUE_NEXT_SEMESTER,
    UPDATE_FINISH,
    Accepted,
    ContinueNextSemesterRequest,
    FinishRequest,
)
from core.contracts.reenrollment import (
    BuildOffers,
    ContinueEnrollment,
    FinishEnrollment,
    FinishOutcome,
    Offer,
    Offers,
    OpenedReenrollments,
    OpenReenrollment,
    RecordAnswers,
    RecordOutcome,
    reenrollment_workflow_id,
)
from core.db import SessionFactory, transaction
from core.reenrollment import all_semesters, families_to_offer, local_day_bounds, start_reenrollments
from core.settings import Settings
from core.temporal import enrollment_workflow_id
from domain.calendar import Closure as ClosureDays
from domain.calendar import Term, WeeklyWindow
from domain.enrollment_rules import EnrollmentState
from domain.reenrollment import SemesterDates, choose_slot, default_deadline, semesters_to_open
from models import (
    BLOCKING_STATUSES,
    Closure,
    Enrollment,
    Lesson,
    LessonKind,
    ReenrollmentOffer,
    Semester,
    TeacherAvailability,
    TeacherTimeOff,
)

log = logging.getLogger("cedar.reenrollment")


class _NotRunning(Exception):
    """The enrollment's workflow has ended (it predates semester ends: it ended at its last lesson)."""


def _offer(row: ReenrollmentOffer) -> Offer:
    return Offer(
        enrollment_id=row.enrollment_id,
        student_id=row.student_id,
        teacher_id=row.teacher_id,
        weekday=row.weekday,
        local_time=row.local_time,
        lesson_minutes=row.lesson_minutes,
        same_as_now=row.same_as_now,
    )


class ReenrollmentActivities:
    def __init__(self, settings: Settings, sessions: SessionFactory, client: Client) -> None:
        self._settings = settings
        self._sessions = sessions
        self._client = client

    @activity.defn(name="reenrollment_build_offers")
    async def build_offers(self, request: BuildOffers) -> Offers:
        """One offer per active enrollment of the family with regular lessons in the ending semester: the same
        teacher, weekday and local time in the next semester, or the teacher's nearest free weekly slot."""
        async with transaction(self._sessions) as session:
            ending = await session.get(Semester, request.semester_id)
            following = await session.get(Semester, request.next_semester_id)
            if ending is None or following is None:
                raise ValueError("the ending or the next semester no longer exists")
            since, before = local_day_bounds(ending.start_date, ending.end_date, self._settings)
            latest = (
                select(col(Lesson.enrollment_id), col(Lesson.starts_at), col(Lesson.ends_at))
                .join(Enrollment, col(Enrollment.id) == col(Lesson.enrollment_id))
                .where(
                    col(Enrollment.parent_id) == request.parent_id,
                    col(Enrollment.state) == EnrollmentState.ACTIVE,
                    col(Lesson.kind) == LessonKind.regular,
                    col(Lesson.status).in_([*BLOCKING_STATUSES, "no_show"]),
                    col(Lesson.starts_at) >= since,
                    col(Lesson.starts_at) < before,
                )
                .order_by(col(Lesson.enrollment_id), col(Lesson.starts_at).desc())
                .distinct(col(Lesson.enrollment_id))
            )
            for enrollment_id, starts_at, ends_at in (await session.execute(latest)).all():
                assert enrollment_id is not None  # joined to its enrollment
                await self._offer_one(session, request, following, enrollment_id, starts_at, ends_at - starts_at)
            rows = await session.scalars(
                select(ReenrollmentOffer)
                .where(
                    col(ReenrollmentOffer.parent_id) == request.parent_id,
                    col(ReenrollmentOffer.next_semester_id) == request.next_semester_id,
                    col(ReenrollmentOffer.semester_id) == request.semester_id,
                )
                .order_by(col(ReenrollmentOffer.created_at), col(ReenrollmentOffer.enrollment_id))
            )
            return Offers(offers=[_offer(row) for row in rows], next_semester_name=following.name)

    async def _offer_one(
        self,
        session: AsyncSession,
        request: BuildOffers,
        following: Semester,
        enrollment_id: uuid.UUID,
        starts_at: datetime,
        length: timedelta,
    ) -> None:
        existing = await session.scalar(
            select(col(ReenrollmentOffer.id)).where(
                col(ReenrollmentOffer.enrollment_id) == enrollment_id,
                col(ReenrollmentOffer.next_semester_id) == following.id,
            )
        )
        enrollment = await session.get(Enrollment, enrollment_id)
        if existing is not None or enrollment is None or enrollment.teacher_id is None:
            return
        assert enrollment.student_id is not None
        teacher_id, tz = enrollment.teacher_id, self._settings.timezone
        since, before = local_day_bounds(following.start_date, following.end_date, self._settings)
        windows = [
            WeeklyWindow(w.weekday, w.start_time, w.end_time)
            for w in await session.scalars(
                select(TeacherAvailability).where(col(TeacherAvailability.teacher_id) == teacher_id)
            )
        ]
        lessons = select(col(Lesson.starts_at), col(Lesson.ends_at)).where(
            col(Lesson.teacher_id) == teacher_id,
            col(Lesson.status).in_(BLOCKING_STATUSES),
            col(Lesson.ends_at) > since,
            col(Lesson.starts_at) < before,
        )
        time_off = select(col(TeacherTimeOff.starts_at), col(TeacherTimeOff.ends_at)).where(
            col(TeacherTimeOff.teacher_id) == teacher_id,
            col(TeacherTimeOff.ends_at) > since,
            col(TeacherTimeOff.starts_at) < before,
        )
        busy = [(s, e) for s, e in await session.execute(union_all(lessons, time_off))]
        closures = [
            ClosureDays(s, e)
            for s, e in await session.execute(select(col(Closure.start_date), col(Closure.end_date)))
            if e >= following.start_date and s <= following.end_date
        ]
        local = starts_at.astimezone(tz)
        slot = choose_slot(
            local.weekday(),
            local.time(),
            length,
            Term(following.start_date, following.end_date, closures),
            windows,
            busy,
            tz,
            datetime.now(UTC),
        )
        if slot is None:
            log.warning("no free weekly slot for enrollment %s in semester %s", enrollment_id, following.id)
            return
        now = datetime.now(UTC)
        await session.execute(
            insert(ReenrollmentOffer)
            .values(
                id=uuid.uuid4(),
                workflow_id=reenrollment_workflow_id(request.parent_id, request.semester_id),
                parent_id=request.parent_id,
                enrollment_id=enrollment_id,
                student_id=enrollment.student_id,
                teacher_id=teacher_id,
                semester_id=request.semester_id,
                next_semester_id=following.id,
                weekday=slot.weekday,
                local_time=slot.start,
                lesson_minutes=enrollment.lesson_minutes,
                same_as_now=slot.same_as_now,
                deadline=request.deadline,
                default_answer=request.default,
                outcome="open",
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(constraint="uq_reenrollment_offers_enrollment_next")
        )

    @activity.defn(name="reenrollment_record_answers")
    async def record_answers(self, request: RecordAnswers) -> None:
        async with transaction(self._sessions) as session:
            for answer in request.answers:
                await session.execute(
                    update(ReenrollmentOffer)
                    .where(
                        col(ReenrollmentOffer.enrollment_id) == answer.enrollment_id,
                        col(ReenrollmentOffer.next_semester_id) == request.next_semester_id,
                    )
                    .values(
                        returning=answer.returning,
                        answered_by=request.answered_by,
                        answered_by_user_id=request.actor_user_id,
                        answered_at=request.answered_at,
                        updated_at=datetime.now(UTC),
                    )
                )

    @activity.defn(name="reenrollment_record_outcome")
    async def record_outcome(self, request: RecordOutcome) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(ReenrollmentOffer)
                .where(
                    col(ReenrollmentOffer.enrollment_id) == request.enrollment_id,
                    col(ReenrollmentOffer.next_semester_id) == request.next_semester_id,
                )
                .values(outcome=request.outcome, updated_at=datetime.now(UTC))
            )

    @activity.defn(name="reenrollment_continue_enrollment")
    async def continue_enrollment(self, request: ContinueEnrollment) -> bool:
        """The enrollment's workflow keeps the student active until the new last lesson; False when it could
        not be told (it was cancelled meanwhile, or it predates semester ends and has ended)."""
        message = ContinueNextSemesterRequest(lessons_end=request.lessons_end)
        try:
            return await self._update(request.enrollment_id, UPDATE_CONTINUE_NEXT_SEMESTER, message)
        except _NotRunning:
            return False

    @activity.defn(name="reenrollment_finish_enrollment")
    async def finish_enrollment(self, request: FinishEnrollment) -> FinishOutcome:
        """The enrollment completes once its last lesson (read now: the lessons may have moved) is over."""
        async with self._sessions() as session:
            ends_at = await session.scalar(
                select(col(Lesson.ends_at))
                .where(
                    col(Lesson.enrollment_id) == request.enrollment_id,
                    col(Lesson.status).in_(BLOCKING_STATUSES),
                )
                .order_by(col(Lesson.ends_at).desc())
                .limit(1)
            )
        message = FinishRequest(last_lesson_ends_at=ends_at)
        try:
            told = await self._update(request.enrollment_id, UPDATE_FINISH, message)
        except _NotRunning:
            told, running = False, False
        else:
            running = True
        async with self._sessions() as session:
            state = await session.scalar(
                select(col(Enrollment.state)).where(col(Enrollment.id) == request.enrollment_id)
            )
        return FinishOutcome(told=told, running=running, state=state or "", last_lesson_ends_at=ends_at)

    async def _update(self, enrollment_id: uuid.UUID, name: str, message: object) -> bool:
        """True when the enrollment's workflow took the update, False when it refused it; :class:`_NotRunning`
        when it has ended."""
        handle = self._client.get_workflow_handle(enrollment_workflow_id(enrollment_id))
        try:
            await handle.execute_update(name, message, result_type=Accepted)
        except WorkflowUpdateFailedError as error:
            log.warning("enrollment %s refused %s: %s", enrollment_id, name, error.cause)
            return False
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            log.warning("enrollment %s has no running workflow for %s", enrollment_id, name)
            raise _NotRunning from error
        return True

    @activity.defn(name="reenrollment_open_due")
    async def open_due(self, _: OpenReenrollment) -> OpenedReenrollments:
        """Opens re-enrollment for each semester ending within the lead time that has a next semester."""
        settings = self._settings
        now = datetime.now(UTC)
        async with self._sessions() as session:
            semesters = await all_semesters(session)
            today = now.astimezone(settings.timezone).date()
            due = semesters_to_open(semesters, today, settings.reenrollment_lead_time)
            opened = OpenedReenrollments()
            for ending, following in due:
                parents = await families_to_offer(session, settings, ending)
                await self._start(parents, ending, following, now)
                opened.semesters += 1
                opened.families += len(parents)
        return opened

    async def _start(
        self, parents: list[uuid.UUID], ending: SemesterDates, following: SemesterDates, now: datetime
    ) -> None:
        settings = self._settings
        deadline = default_deadline(now, ending, settings.reenrollment_answer_time, settings.timezone)
        await start_reenrollments(
            self._client, settings, parents, ending.id, following.id, deadline, settings.reenrollment_default
        )
