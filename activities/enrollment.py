"""The enrollment workflow's database steps (short: run as local activities) and its hand-off to billing.

Every step locks the enrollment row, does its work and mirrors the new state into that row in ONE transaction,
so the row never disagrees with what was done. Every step is idempotent: run again (a retry, a replayed
workflow, a second worker) it finds its own earlier result instead of doing the work twice.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import any_, func, select, union_all, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio import activity
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.exceptions import ApplicationError, FailureError

from core.contracts.billing import (
    BILLING_SUMMARY_FROM_ENROLLMENT,
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
from core.contracts.enrollment import (
    FAMILY_NOT_CONFIRMED,
    AccountCreated,
    AssignTeacher,
    BookDemo,
    BookNextSemester,
    DemoBooking,
    EnrollmentRef,
    EnrollmentTimings,
    FamilyCheck,
    MirrorState,
    NextSemesterLessons,
    RegularLessons,
    TeacherAssignment,
    ValidatedEnrollment,
)
from core.db import SessionFactory, lock_keys, schedule_lock_keys, transaction
from core.identity import IdentityProvider
from core.settings import Settings
from core.temporal import billing_workflow_id
from domain.calendar import Closure as ClosureDays
from domain.calendar import Term, WeeklyWindow, weekly_occurrences
from domain.enrollment_flow import lesson_term, windows_from_json
from domain.enrollment_rules import CLOSED_STATES, EnrollmentState, TransitionRefused, move_needed
from domain.matching import TeacherCandidate, is_eligible, rank_teachers
from domain.slots import first_slot, iter_slots
from models import (
    BLOCKING_STATUSES,
    Closure,
    Consent,
    ConsentKind,
    Enrollment,
    Lesson,
    LessonKind,
    LessonStatus,
    Parent,
    Role,
    Semester,
    Student,
    Teacher,
    TeacherAvailability,
    TeacherTimeOff,
    User,
)

EXCLUSION_CONSTRAINT = "ex_lessons_teacher_no_overlap"
LIVE_ENROLLMENT_INDEX = "uq_enrollments_student_instrument_live"
# Slots tried when the exclusion constraint refuses one (another booking got there first).
MAX_DEMO_ATTEMPTS = 40
# Closed enrollments; every other one (active included) is live.
_CLOSED = [s.value for s in CLOSED_STATES]

Interval = tuple[datetime, datetime]


def _fail(reason: str, kind: str = "EnrollmentRejected") -> ApplicationError:
    return ApplicationError(reason, type=kind, non_retryable=True)


def mirror(enrollment: Enrollment, state: str, failure_reason: str | None = None) -> None:
    """Move the row to ``state`` and append the step, as the enrollment's states allow (``domain.enrollment_rules``):
    the same state again (a retried step) or one the row has already been through (a step run again after the row
    moved on) changes nothing; a move the states do not allow is refused, non-retryable."""
    try:
        if not move_needed(enrollment.state, state, (step["state"] for step in enrollment.steps)):
            return
    except TransitionRefused as refused:
        raise _fail(f"enrollment {enrollment.id}: {refused}", "TransitionRefused") from refused
    now = datetime.now(UTC)
    enrollment.steps = [*enrollment.steps, {"state": state, "at": now.isoformat()}]
    enrollment.state = state
    enrollment.updated_at = now
    if failure_reason is not None:
        enrollment.failure_reason = failure_reason[:1000]
    if EnrollmentState(state) in CLOSED_STATES:
        enrollment.completed_at = now


def _validated(enrollment: Enrollment) -> None:
    """Records ``validated`` on a row still ``received``: validation reads only, so the next step records it."""
    if enrollment.state == EnrollmentState.RECEIVED:
        mirror(enrollment, EnrollmentState.VALIDATED)


class EnrollmentActivities:
    def __init__(self, settings: Settings, sessions: SessionFactory, identity: IdentityProvider) -> None:
        self._settings = settings
        self._sessions = sessions
        self._identity = identity

    # --- helpers -------------------------------------------------------------------------------------------

    async def _locked(self, session: AsyncSession, enrollment_id: uuid.UUID) -> Enrollment:
        # NO KEY UPDATE: serialises the enrollment's own steps without blocking the foreign-key checks of rows
        # that point at it (an email being recorded, a lesson being booked) for the length of a step.
        enrollment = await session.get(Enrollment, enrollment_id, with_for_update={"key_share": True})
        if enrollment is None:
            raise _fail(f"enrollment {enrollment_id} not found")
        return enrollment

    async def _closures(self, session: AsyncSession) -> list[ClosureDays]:
        rows = (await session.execute(select(col(Closure.start_date), col(Closure.end_date)))).all()
        return [ClosureDays(start, end) for start, end in rows]

    async def _availability(
        self, session: AsyncSession, teacher_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[WeeklyWindow]]:
        windows: dict[uuid.UUID, list[WeeklyWindow]] = {t: [] for t in teacher_ids}
        rows = await session.scalars(
            select(TeacherAvailability).where(col(TeacherAvailability.teacher_id).in_(teacher_ids))
        )
        for row in rows:
            windows[row.teacher_id].append(WeeklyWindow(row.weekday, row.start_time, row.end_time))
        return windows

    async def _busy(
        self, session: AsyncSession, teacher_ids: Sequence[uuid.UUID], start: datetime, end: datetime
    ) -> dict[uuid.UUID, list[Interval]]:
        """Each teacher's taken time between ``start`` and ``end`` (lessons that block a slot, time off): one query."""
        lessons = select(col(Lesson.teacher_id), col(Lesson.starts_at), col(Lesson.ends_at)).where(
            col(Lesson.teacher_id).in_(teacher_ids),
            col(Lesson.status).in_(BLOCKING_STATUSES),
            col(Lesson.ends_at) > start,
            col(Lesson.starts_at) < end,
        )
        time_off = select(
            col(TeacherTimeOff.teacher_id), col(TeacherTimeOff.starts_at), col(TeacherTimeOff.ends_at)
        ).where(
            col(TeacherTimeOff.teacher_id).in_(teacher_ids),
            col(TeacherTimeOff.ends_at) > start,
            col(TeacherTimeOff.starts_at) < end,
        )
        busy: dict[uuid.UUID, list[Interval]] = {t: [] for t in teacher_ids}
        for teacher_id, busy_start, busy_end in await session.execute(union_all(lessons, time_off)):
            busy[teacher_id].append((busy_start, busy_end))
        return busy

    def _demo_window(self) -> Interval:
        earliest = datetime.now(UTC) + self._settings.demo_min_notice
        return earliest, earliest + self._settings.demo_search_horizon

    # --- steps ---------------------------------------------------------------------------------------------

    @activity.defn(name="enrollment_validate")
    async def validate(self, ref: EnrollmentRef) -> ValidatedEnrollment:
        """What needs the database: the student is not already learning this instrument with us."""
        async with transaction(self._sessions) as session:
            enrollment = await self._locked(session, ref.enrollment_id)
            application = enrollment.application
            student = application["student"]
            already = await session.scalar(
                select(col(Enrollment.id))
                .join(Student, col(Student.id) == col(Enrollment.student_id))
                .join(Parent, col(Parent.id) == col(Student.parent_id))
                .where(
                    col(Parent.email) == application["parent"]["email"].lower(),
                    func.lower(col(Student.first_name)) == student["first_name"].lower(),
                    col(Student.date_of_birth) == date.fromisoformat(student["date_of_birth"]),
                    col(Enrollment.instrument) == enrollment.instrument,
                    col(Enrollment.state).not_in(_CLOSED),
                    col(Enrollment.id) != enrollment.id,
                )
                .limit(1)
            )
            if already is not None:
                raise _fail(f"the student is already enrolled in {enrollment.instrument}")
            settings = self._settings
            return ValidatedEnrollment(
                payment_method_id=enrollment.stripe_payment_method_id,
                instrument=enrollment.instrument,
                lesson_minutes=enrollment.lesson_minutes,
                billing_interval=enrollment.billing_interval,
                timings=EnrollmentTimings(
                    waitlist_timeout=settings.waitlist_timeout,
                    waitlist_recheck_interval=settings.waitlist_recheck_interval,
                    demo_reminder_before=settings.demo_reminder_before,
                    teacher_outcome_reminder_after=settings.teacher_outcome_reminder_after,
                    outcome_timeout_after_demo=settings.outcome_timeout_after_demo,
                    family_confirmation_timeout=settings.family_confirmation_timeout,
                    semester_end_grace=settings.semester_end_grace,
                    billing_start_timeout=settings.billing_start_timeout,
                    billing_start_heartbeat=settings.billing_start_heartbeat,
                ),
            )

    @activity.defn(name="enrollment_check_family")
    async def check_family(self, ref: EnrollmentRef) -> FamilyCheck:
        """Whether the address already has a family (or any login) that has not agreed to this enrollment: then
        the row waits as ``awaiting_confirmation``. A staff account's address is refused."""
        async with transaction(self._sessions) as session:
            enrollment = await self._locked(session, ref.enrollment_id)
            # Agreed to, or this enrollment made the family itself: a replay after a crash finds its own family.
            if enrollment.family_confirmed_at is not None or enrollment.parent_id is not None:
                return FamilyCheck(needs_confirmation=False, parent_id=enrollment.parent_id)
            email = _applicant_email(enrollment)
            await _refuse_staff_address(session, email)
            parent_id = await session.scalar(select(col(Parent.id)).where(col(Parent.email) == email))
            has_login = await session.scalar(select(col(User.id)).where(col(User.email) == email))
            if parent_id is None and has_login is None:
                return FamilyCheck(needs_confirmation=False)
            _validated(enrollment)
            mirror(enrollment, EnrollmentState.AWAITING_CONFIRMATION)
            return FamilyCheck(needs_confirmation=True, parent_id=parent_id)

    @activity.defn(name="enrollment_accept_family")
    async def accept_family(self, ref: EnrollmentRef) -> None:
        """The family's owner confirmed through the emailed link: the enrollment may now join the family."""
        async with transaction(self._sessions) as session:
            enrollment = await self._locked(session, ref.enrollment_id)
            if enrollment.family_confirmed_at is None:
                enrollment.family_confirmed_at = datetime.now(UTC)

    @activity.defn(name="enrollment_create_account")
    async def create_account(self, ref: EnrollmentRef) -> AccountCreated:
        """The family's login (one per family: a sibling's enrollment reuses it), the parent, consents, student."""
        async with transaction(self._sessions) as session:
            enrollment = await self._locked(session, ref.enrollment_id)
            if enrollment.parent_id is None or enrollment.student_id is None:
                await self._create_family(session, enrollment)
            _validated(enrollment)
            mirror(enrollment, EnrollmentState.ACCOUNT_CREATED)
            assert enrollment.parent_id is not None
            assert enrollment.student_id is not None
            try:
                await session.flush()
            except IntegrityError as exc:
                if LIVE_ENROLLMENT_INDEX in str(exc.orig):
                    raise _fail(f"the student is already enrolled in {enrollment.instrument}") from exc
                raise
            return AccountCreated(parent_id=enrollment.parent_id, student_id=enrollment.student_id)

    async def _create_family(self, session: AsyncSession, enrollment: Enrollment) -> None:
        """A new family with the form's consents, or (confirmed by its owner, or sent by its signed-in parent) an
        existing family gaining a child. An existing family's consents change only through the consents API."""
        application = enrollment.application
        person = application["parent"]
        email = _applicant_email(enrollment)
        await _refuse_staff_address(session, email)
        existing = await session.scalar(select(Parent).where(col(Parent.email) == email))
        if existing is None and enrollment.family_confirmed_at is None:
            has_login = await session.scalar(select(col(User.id)).where(col(User.email) == email))
            if has_login is not None:
                raise _fail("the address has an account that has not confirmed", FAMILY_NOT_CONFIRMED)
        if existing is not None and enrollment.family_confirmed_at is None:
            raise _fail("a family with this address appeared; it must confirm first", FAMILY_NOT_CONFIRMED)
        account = await self._identity.ensure_account(session, email, Role.parent)
        child = application["student"]
        student: Student | None = None
        if existing is None:
            parent_id = uuid.uuid4()
            session.add(
                Parent(
                    id=parent_id,
                    user_id=account.user_id,
                    first_name=person["first_name"],
                    last_name=person["last_name"],
                    email=email,
                    phone=person["phone"],
                    created_at=datetime.now(UTC),
                )
            )
            await session.flush()
            consents = application.get("consents", {})
            session.add_all(
                Consent(
                    parent_id=parent_id, kind=kind, granted=bool(consents.get(kind.value)), source="enrollment_form"
                )
                for kind in ConsentKind
            )
        else:  # a sibling's family (or this step run again): reuse the parent and, if known, the child
            parent_id = existing.id
            if existing.user_id is None:
                existing.user_id = account.user_id
            student = await session.scalar(
                select(Student).where(
                    col(Student.parent_id) == parent_id,
                    func.lower(col(Student.first_name)) == child["first_name"].lower(),
                    col(Student.date_of_birth) == date.fromisoformat(child["date_of_birth"]),
                )
            )
        if student is None:
            student = Student(
                parent_id=parent_id,
                first_name=child["first_name"],
                last_name=child["last_name"],
                date_of_birth=date.fromisoformat(child["date_of_birth"]),
                instrument=enrollment.instrument,
                is_active=False,  # active once the demo's outcome is "continue"
            )
            session.add(student)
            await session.flush()
        enrollment.parent_id, enrollment.student_id = parent_id, student.id

    @activity.defn(name="enrollment_assign_teacher")
    async def assign_teacher(self, request: AssignTeacher) -> TeacherAssignment:
        """Reserve a place with the best-ranked teacher (atomically), or mirror ``waitlisted``."""
        async with transaction(self._sessions) as session:
            enrollment = await self._locked(session, request.enrollment_id)
            if enrollment.teacher_id is not None:
                return TeacherAssignment(teacher_id=enrollment.teacher_id)
            preferred = windows_from_json(enrollment.preferred_windows)
            for teacher_id in await self._ranked_teachers(session, enrollment, preferred, request.teacher_id):
                reserved = await session.scalar(
                    update(Teacher)
                    .where(
                        col(Teacher.id) == teacher_id,
                        col(Teacher.is_active),
                        col(Teacher.active_students) < col(Teacher.capacity),
                    )
                    .values(active_students=col(Teacher.active_students) + 1)
                    .returning(col(Teacher.id))
                )
                if reserved is not None:
                    enrollment.teacher_id = reserved
                    mirror(enrollment, EnrollmentState.TEACHER_ASSIGNED)
                    return TeacherAssignment(teacher_id=reserved)
            reason = (
                "the chosen teacher has no free place or does not fit the family's windows"
                if request.teacher_id
                else "no teacher of this instrument has a free place at the family's preferred times"
            )
            mirror(enrollment, EnrollmentState.WAITLISTED)
            return TeacherAssignment(teacher_id=None, reason=reason)

    async def _ranked_teachers(
        self, session: AsyncSession, enrollment: Enrollment, preferred: list[WeeklyWindow], chosen: uuid.UUID | None
    ) -> list[uuid.UUID]:
        query = select(Teacher).where(col(Teacher.is_active), any_(col(Teacher.instruments)) == enrollment.instrument)
        if chosen is not None:
            query = query.where(col(Teacher.id) == chosen)
        teachers = list(await session.scalars(query))
        availability = await self._availability(session, [t.id for t in teachers])
        candidates = [
            TeacherCandidate(
                teacher_id=str(teacher.id),
                instruments=frozenset(teacher.instruments),
                active=teacher.is_active,
                capacity=teacher.capacity,
                active_students=teacher.active_students,
                availability=availability[teacher.id],
            )
            for teacher in teachers
        ]
        eligible = [c for c in candidates if is_eligible(c, enrollment.instrument, preferred)]
        # The earliest slot only breaks ties of load: find slots (the costly part) for the tied best only.
        best = min(((c.load, c.active_students) for c in eligible), default=None)
        tied = [c for c in eligible if (c.load, c.active_students) == best]
        if len(tied) > 1:
            slots = await self._earliest_slots(session, enrollment, preferred, tied)
            eligible = [replace(c, earliest_slot=slots[c.teacher_id]) if c.teacher_id in slots else c for c in eligible]
        ranked = rank_teachers(eligible, enrollment.instrument, preferred)
        return [uuid.UUID(c.teacher_id) for c in ranked]

    async def _earliest_slots(
        self,
        session: AsyncSession,
        enrollment: Enrollment,
        preferred: list[WeeklyWindow],
        candidates: list[TeacherCandidate],
    ) -> dict[str, datetime | None]:
        earliest, horizon = self._demo_window()
        busy = await self._busy(session, [uuid.UUID(c.teacher_id) for c in candidates], earliest, horizon)
        closures = await self._closures(session)
        duration, tz = timedelta(minutes=enrollment.lesson_minutes), self._settings.timezone
        slots: dict[str, datetime | None] = {}
        for candidate in candidates:
            taken = busy[uuid.UUID(candidate.teacher_id)]
            slot = first_slot(candidate.availability, preferred, taken, closures, duration, earliest, horizon, tz)
            slots[candidate.teacher_id] = slot[0] if slot else None
        return slots

    @activity.defn(name="enrollment_book_demo")
    async def book_demo(self, request: BookDemo) -> DemoBooking:
        """The first free slot, the exclusion constraint having the last word; no slot sends the student back
        to the waitlist (the teacher's place released in the same transaction)."""
        async with transaction(self._sessions) as session:
            enrollment = await self._locked(session, request.enrollment_id)
            if request.replacing_lesson_id is not None:
                await _mark_no_show(session, request.replacing_lesson_id)
            if enrollment.demo_lesson_id is not None and enrollment.demo_lesson_id != request.replacing_lesson_id:
                booked = await session.get(Lesson, enrollment.demo_lesson_id)
                if booked is not None and booked.status == LessonStatus.scheduled:
                    return DemoBooking(lesson_id=booked.id, starts_at=booked.starts_at, ends_at=booked.ends_at)
            if enrollment.teacher_id is None:
                raise _fail("no teacher is assigned to book a demo with")
            await lock_keys(session, *schedule_lock_keys(enrollment.teacher_id, enrollment.student_id))
            lesson = await self._insert_first_free_demo(session, enrollment)
            if lesson is None:
                await release_teacher_of(session, enrollment)
                mirror(enrollment, EnrollmentState.WAITLISTED)
                return DemoBooking(lesson_id=None)
            enrollment.demo_lesson_id = lesson[0]
            mirror(enrollment, EnrollmentState.DEMO_SCHEDULED)
            return DemoBooking(lesson_id=lesson[0], starts_at=lesson[1], ends_at=lesson[2])

    async def _insert_first_free_demo(
        self, session: AsyncSession, enrollment: Enrollment
    ) -> tuple[uuid.UUID, datetime, datetime] | None:
        assert enrollment.teacher_id is not None
        assert enrollment.student_id is not None
        teacher_id = enrollment.teacher_id
        earliest, horizon = self._demo_window()
        slots = iter_slots(
            (await self._availability(session, [teacher_id]))[teacher_id],
            windows_from_json(enrollment.preferred_windows),
            (await self._busy(session, [teacher_id], earliest, horizon))[teacher_id],
            await self._closures(session),
            timedelta(minutes=enrollment.lesson_minutes),
            earliest,
            horizon,
            self._settings.timezone,
        )
        for start, end in islice(slots, MAX_DEMO_ATTEMPTS):
            lesson_id = await _insert_lesson(session, enrollment, LessonKind.demo, start, end)
            if lesson_id is not None:
                return lesson_id, start, end
        return None

    @activity.defn(name="enrollment_book_regular_lessons")
    async def book_regular_lessons(self, ref: EnrollmentRef) -> RegularLessons:
        """``continue``: the weekly lesson at the demo's local weekday and time for the rest of the semester
        (closures skipped, a week taken by another booking skipped), the student active, the row ``active``."""
        async with transaction(self._sessions) as session:
            enrollment = await self._locked(session, ref.enrollment_id)
            demo = await session.get(Lesson, enrollment.demo_lesson_id) if enrollment.demo_lesson_id else None
            if demo is None:
                raise _fail("the enrollment has no demo lesson to continue from")
            now = datetime.now(UTC)
            if demo.status == LessonStatus.scheduled:
                demo.status, demo.updated_at = LessonStatus.completed, now
            skipped = 0
            if enrollment.state != EnrollmentState.ACTIVE:
                await lock_keys(session, *schedule_lock_keys(demo.teacher_id, demo.student_id))
                for start, end in await self._weekly_slots(session, demo, now):
                    if await _insert_lesson(session, enrollment, LessonKind.regular, start, end) is None:
                        skipped += 1
                student = await session.get(Student, enrollment.student_id)
                assert student is not None
                student.is_active = True
                mirror(enrollment, EnrollmentState.ACTIVE)
            first, last, count = (
                await session.execute(
                    select(func.min(col(Lesson.starts_at)), func.max(col(Lesson.ends_at)), func.count()).where(
                        col(Lesson.enrollment_id) == enrollment.id,
                        col(Lesson.kind) == LessonKind.regular,
                        col(Lesson.status) == LessonStatus.scheduled,
                    )
                )
            ).one()
            return RegularLessons(count=count, skipped_conflicts=skipped, first_starts_at=first, last_ends_at=last)

    async def _weekly_slots(self, session: AsyncSession, demo: Lesson, now: datetime) -> list[Interval]:
        tz = self._settings.timezone
        local = demo.starts_at.astimezone(tz)
        semesters = (await session.execute(select(col(Semester.start_date), col(Semester.end_date)))).all()
        closures = await self._closures(session)
        start_from = max(demo.ends_at, now)
        for term in lesson_term([(s, e) for s, e in semesters], closures, start_from.astimezone(tz).date()):
            weeks = weekly_occurrences(
                term, local.weekday(), local.time(), demo.ends_at - demo.starts_at, tz, start_from
            )
            if weeks:
                return weeks
        return []

    @activity.defn(name="enrollment_book_next_semester")
    async def book_next_semester(self, request: BookNextSemester) -> NextSemesterLessons:
        """A returning student's weekly lesson through the next semester on the same enrollment, in one
        transaction: the teacher's conflicts checked as at enrollment (a week taken is skipped), closures skipped.
        Run again it finds the lessons it booked."""
        async with transaction(self._sessions) as session:
            enrollment = await self._locked(session, request.enrollment_id)
            if enrollment.state != EnrollmentState.ACTIVE or enrollment.teacher_id is None:
                raise _fail(f"enrollment {enrollment.id} is {enrollment.state}, not active with a teacher")
            semester = await session.get(Semester, request.next_semester_id)
            if semester is None:
                raise _fail(f"semester {request.next_semester_id} not found")
            await lock_keys(session, *schedule_lock_keys(enrollment.teacher_id, enrollment.student_id))
            closures = [c for c in await self._closures(session) if c.end >= semester.start_date]
            term = Term(semester.start_date, semester.end_date, closures)
            weeks = weekly_occurrences(
                term,
                request.weekday,
                request.local_time,
                timedelta(minutes=enrollment.lesson_minutes),
                self._settings.timezone,
                datetime.now(UTC),
            )
            booked: list[Interval] = []
            for start, end in weeks:
                if await _insert_lesson(session, enrollment, LessonKind.regular, start, end) is not None:
                    booked.append((start, end))
            return NextSemesterLessons(
                count=len(booked),
                skipped_conflicts=len(weeks) - len(booked),
                first_starts_at=booked[0][0] if booked else None,
                last_ends_at=booked[-1][1] if booked else None,
            )

    @activity.defn(name="enrollment_mark_demo_no_show")
    async def mark_demo_no_show(self, ref: EnrollmentRef) -> None:
        async with transaction(self._sessions) as session:
            enrollment = await self._locked(session, ref.enrollment_id)
            if enrollment.demo_lesson_id is not None:
                await _mark_no_show(session, enrollment.demo_lesson_id)

    # --- compensations (each idempotent) and the state mirror ----------------------------------------------

    @activity.defn(name="enrollment_release_teacher")
    async def release_teacher(self, ref: EnrollmentRef) -> None:
        async with transaction(self._sessions) as session:
            await release_teacher_of(session, await self._locked(session, ref.enrollment_id))

    @activity.defn(name="enrollment_cancel_future_lessons")
    async def cancel_future_lessons(self, ref: EnrollmentRef) -> int:
        async with transaction(self._sessions) as session:
            return await cancel_future_lessons_of(session, ref.enrollment_id)

    @activity.defn(name="enrollment_deactivate_student")
    async def deactivate_student(self, ref: EnrollmentRef) -> None:
        """Deactivate the student unless another live enrollment (a second instrument) keeps them active."""
        async with transaction(self._sessions) as session:
            await deactivate_student_of(session, await self._locked(session, ref.enrollment_id))

    @activity.defn(name="enrollment_mirror_state")
    async def mirror_state(self, request: MirrorState) -> None:
        async with transaction(self._sessions) as session:
            mirror(await self._locked(session, request.enrollment_id), request.state, request.failure_reason)


async def _insert_lesson(
    session: AsyncSession, enrollment: Enrollment, kind: LessonKind, start: datetime, end: datetime
) -> uuid.UUID | None:
    """Book one lesson; None when the teacher's time is taken (the exclusion constraint refused it). The same
    lesson booked again (a retry) is found by its unique (student, kind, start) instead of added twice."""
    assert enrollment.teacher_id is not None
    assert enrollment.student_id is not None
    try:
        async with session.begin_nested():
            lesson_id = await session.scalar(
                insert(Lesson)
                .values(
                    id=uuid.uuid4(),
                    kind=kind,
                    status=LessonStatus.scheduled,
                    teacher_id=enrollment.teacher_id,
                    student_id=enrollment.student_id,
                    enrollment_id=enrollment.id,
                    starts_at=start,
                    ends_at=end,
                    notes="",
                    created_at=datetime.now(UTC),
                    updated_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing(constraint="uq_lessons_student_kind_start")
                .returning(col(Lesson.id))
            )
    except IntegrityError as exc:
        if EXCLUSION_CONSTRAINT in str(exc.orig):
            return None
        raise
    if lesson_id is None:  # booked before, by an earlier attempt of this step
        lesson_id = await session.scalar(
            select(col(Lesson.id)).where(
                col(Lesson.student_id) == enrollment.student_id,
                col(Lesson.kind) == kind,
                col(Lesson.starts_at) == start,
                col(Lesson.enrollment_id) == enrollment.id,
                col(Lesson.status) == LessonStatus.scheduled,
            )
        )
    return lesson_id


def _applicant_email(enrollment: Enrollment) -> str:
    return str(enrollment.application["parent"]["email"]).strip().lower()


async def _refuse_staff_address(session: AsyncSession, email: str) -> None:
    role = await session.scalar(select(col(User.role)).where(col(User.email) == email))
    if role is not None and role != Role.parent:
        raise _fail("the address belongs to a staff account; enroll with the family's own address")


async def _mark_no_show(session: AsyncSession, lesson_id: uuid.UUID) -> None:
    await session.execute(
        update(Lesson)
        .where(col(Lesson.id) == lesson_id, col(Lesson.status) == LessonStatus.scheduled)
        .values(status=LessonStatus.no_show, updated_at=datetime.now(UTC))
    )


async def cancel_future_lessons_of(session: AsyncSession, enrollment_id: uuid.UUID) -> int:
    """Cancel the enrollment's lessons that have not started (also those held for dunning); returns how many."""
    now = datetime.now(UTC)
    result = await session.execute(
        update(Lesson)
        .where(
            col(Lesson.enrollment_id) == enrollment_id,
            col(Lesson.status).in_([LessonStatus.scheduled, LessonStatus.suspended]),
            col(Lesson.starts_at) > now,
        )
        .values(status=LessonStatus.cancelled, updated_at=now)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def deactivate_student_of(session: AsyncSession, enrollment: Enrollment) -> None:
    """Deactivate the student unless another live enrollment (a second instrument) keeps them active."""
    if enrollment.student_id is None:
        return
    other = await session.scalar(
        select(col(Enrollment.id)).where(
            col(Enrollment.student_id) == enrollment.student_id,
            col(Enrollment.id) != enrollment.id,
            col(Enrollment.state).not_in(_CLOSED),
        )
    )
    if other is None:
        await session.execute(update(Student).where(col(Student.id) == enrollment.student_id).values(is_active=False))


async def release_teacher_of(session: AsyncSession, enrollment: Enrollment) -> None:
    """Give the teacher's place back once: clearing the enrollment's teacher in the same transaction is the guard."""
    if enrollment.teacher_id is None:
        return
    await release_seat(session, enrollment.teacher_id)
    enrollment.teacher_id = None


async def release_seat(session: AsyncSession, teacher_id: uuid.UUID) -> None:
    """One student fewer for the teacher (never below zero: the teachers' load CHECK agrees)."""
    await session.execute(
        update(Teacher)
        .where(col(Teacher.id) == teacher_id, col(Teacher.active_students) > 0)
        .values(active_students=col(Teacher.active_students) - 1)
    )


class BillingHandoffActivities:
    """Tell the family's billing workflow (billing's own, addressed by name) that a student starts or stops."""

    def __init__(self, settings: Settings, client: Client) -> None:
        self._settings = settings
        self._client = client

    @activity.defn(name="enrollment_start_billing")
    async def start_billing(self, message: StudentStarted) -> StartOutcome | None:
        """Billing's answer to the start (update-with-start), or None for an older enrollment that only signals."""
        if not message.await_outcome:
            await self._signal_with_start(message.parent_id, SIGNAL_STUDENT_STARTED, message)
            return None
        start: WithStartWorkflowOperation[Any, Any] = WithStartWorkflowOperation(
            FAMILY_BILLING_WORKFLOW,
            FamilyBillingInput(parent_id=message.parent_id),
            id=billing_workflow_id(message.parent_id),
            task_queue=self._settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            static_summary=BILLING_SUMMARY_FROM_ENROLLMENT,
        )
        beating = asyncio.create_task(self._heartbeat())
        try:
            # The update id comes from the enrollment: a retried activity attaches to the same update.
            outcome: StartOutcome = await self._client.execute_update_with_start_workflow(
                UPDATE_START_STUDENT,
                message,
                start_workflow_operation=start,
                id=f"start-student-{message.enrollment_id}",
                result_type=StartOutcome,
            )
        except WorkflowUpdateFailedError as error:  # refused by billing's validator, or failed in it
            cause = error.cause
            return StartOutcome(
                enrollment_id=message.enrollment_id,
                status="failed",
                reason=cause.message if isinstance(cause, FailureError) else str(error),
                error_type=cause.type if isinstance(cause, ApplicationError) else None,
            )
        finally:
            beating.cancel()
        return outcome

    async def _heartbeat(self) -> None:
        """While billing works on the start: the activity is alive (a lost worker is seen at the heartbeat timeout)."""
        while True:
            activity.heartbeat()
            await asyncio.sleep(self._settings.billing_start_heartbeat.total_seconds())

    @activity.defn(name="enrollment_stop_billing")
    async def stop_billing(self, message: StudentStopped) -> None:
        await self._signal_with_start(message.parent_id, SIGNAL_STUDENT_STOPPED, message)

    @activity.defn(name="enrollment_lessons_booked")
    async def lessons_booked(self, message: LessonsBooked) -> None:
        """A returning student's next semester is booked: the family's billing workflow runs already."""
        handle = self._client.get_workflow_handle(billing_workflow_id(message.parent_id))
        await handle.signal(SIGNAL_LESSONS_BOOKED, message)

    async def _signal_with_start(
        self, parent_id: uuid.UUID, signal: str, message: StudentStarted | StudentStopped
    ) -> None:
        # Billing de-duplicates by enrollment_id: a retried activity may deliver the signal twice.
        await self._client.start_workflow(
            FAMILY_BILLING_WORKFLOW,
            FamilyBillingInput(parent_id=parent_id),
            id=billing_workflow_id(parent_id),
            task_queue=self._settings.task_queue,
            start_signal=signal,
            start_signal_args=[message],
            static_summary=BILLING_SUMMARY_FROM_ENROLLMENT,
        )
