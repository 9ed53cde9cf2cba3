"""A closure's database steps (``workflows/closures.py``): the lessons booked on its days, each one cancelled with
a make-up credit or moved, one transaction per lesson, and what to tell each family and teacher.

Cancelling reuses the make-up rules (``domain.makeups``: the school's cancellation always earns a credit, its
expiry by the policy) and the ``makeup_credits`` row (one per lesson, ``origin_lesson_id`` unique); the workflow
then starts the credit's own ``MakeupCreditWorkflow``. Moving uses the teacher's nearest free slot after the
closure (``domain.teacher_changes``) with the teachers' exclusion constraint deciding each try.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio import activity

from core.audit import record_audit
from core.contracts.closures import (
    ClosureLesson,
    ClosureLessons,
    ClosureNotice,
    ClosureNotices,
    ClosureNoticesRequest,
    ClosureRef,
    HandleLesson,
    LessonHandled,
    RecordOutcome,
)
from core.db import SessionFactory, lock_keys, schedule_lock_keys, transaction
from core.schedule import rebook
from core.settings import Settings
from domain.calendar import local_to_utc
from domain.local_time import format_local
from domain.makeups import CancelledBy, MakeupPolicy, Outcome, cancellation_outcome, credit_expiry
from models import Closure, Enrollment, Lesson, LessonKind, LessonStatus, MakeupCredit, Student

SYSTEM = "system"


def _reason(closure: Closure) -> str:
    return f"lesson cancelled by the school: closed ({closure.reason})"[:500]


class ClosureActivities:
    def __init__(self, settings: Settings, sessions: SessionFactory) -> None:
        self._settings = settings
        self._sessions = sessions

    def _closed_span(self, closure: Closure) -> tuple[datetime, datetime]:
        tz = self._settings.timezone
        return local_to_utc(closure.start_date, time(0), tz), local_to_utc(
            closure.end_date + timedelta(days=1), time(0), tz
        )

    @activity.defn(name="closure_lessons")
    async def lessons(self, ref: ClosureRef) -> ClosureLessons:
        """The scheduled lessons (not demos: those go through their enrollment) starting on the closure's days."""
        async with self._sessions() as session:
            closure = await session.get(Closure, ref.closure_id)
            if closure is None:
                return ClosureLessons()
            start, end = self._closed_span(closure)
            rows = await session.execute(
                select(col(Lesson.id), col(Lesson.starts_at))
                .where(
                    col(Lesson.status) == LessonStatus.scheduled,
                    col(Lesson.kind) != LessonKind.demo,
                    col(Lesson.starts_at) >= start,
                    col(Lesson.starts_at) < end,
                )
                .order_by(col(Lesson.starts_at), col(Lesson.id))
            )
            return ClosureLessons(lessons=[ClosureLesson(lesson_id=i, starts_at=s) for i, s in rows])

    @activity.defn(name="closure_handle_lesson")
    async def handle_lesson(self, request: HandleLesson) -> LessonHandled:
        """Cancels (with its credit) or moves one lesson, once: run again, it reports what it did."""
        async with transaction(self._sessions) as session:
            lesson = await session.get(Lesson, request.lesson_id)
            if lesson is None:
                raise ValueError(f"lesson {request.lesson_id} not found")
            await lock_keys(session, *schedule_lock_keys(lesson.teacher_id, lesson.student_id))
            lesson = await session.get(Lesson, request.lesson_id, with_for_update=True, populate_existing=True)
            assert lesson is not None
            student = await session.get(Student, lesson.student_id)
            assert student is not None
            handled = LessonHandled(
                lesson_id=lesson.id,
                parent_id=student.parent_id,
                teacher_id=lesson.teacher_id,
                starts_at=request.starts_at,
                result="untouched",
            )
            closure = await session.get(Closure, request.closure_id)
            if closure is None:  # deleted before its lessons were handled: they stay as they are
                return handled
            start, end = self._closed_span(closure)
            on_closed_day = start <= lesson.starts_at < end
            if lesson.status == LessonStatus.scheduled and on_closed_day:
                if request.lesson_action == "move":
                    moved = await self._move(session, lesson, end)
                    if moved is not None:
                        return handled.model_copy(update={"result": "moved", "new_starts_at": moved})
                    await session.refresh(lesson)
                return await self._cancel(session, lesson, student, closure, request, handled)
            if lesson.status == LessonStatus.cancelled:
                credit = await session.scalar(
                    select(MakeupCredit).where(col(MakeupCredit.origin_lesson_id) == lesson.id)
                )
                if credit is not None and credit.reason == _reason(closure):
                    return _cancelled(handled, credit)
            if lesson.status == LessonStatus.scheduled and lesson.starts_at != request.starts_at:
                return handled.model_copy(update={"result": "moved", "new_starts_at": lesson.starts_at})
            return handled

    async def _move(self, session: AsyncSession, lesson: Lesson, closure_end: datetime) -> datetime | None:
        before = {"starts_at": lesson.starts_at.isoformat(), "ends_at": lesson.ends_at.isoformat()}
        earliest = max(closure_end, datetime.now(UTC))
        slot = await rebook(session, lesson, lesson.teacher_id, earliest, self._settings.timezone)
        if slot is None:
            return None
        after = {"starts_at": slot[0].isoformat(), "ends_at": slot[1].isoformat(), "reason": "school closed"}
        await record_audit(
            session,
            actor_user_id=None,
            actor_role=SYSTEM,
            action="closure_move",
            entity_type="lesson",
            entity_id=lesson.id,
            before=before,
            after=after,
        )
        return slot[0]

    async def _cancel(
        self,
        session: AsyncSession,
        lesson: Lesson,
        student: Student,
        closure: Closure,
        request: HandleLesson,
        handled: LessonHandled,
    ) -> LessonHandled:
        now = datetime.now(UTC)
        policy = MakeupPolicy(**request.policy.model_dump())
        await session.execute(
            update(Lesson)
            .where(col(Lesson.id) == lesson.id, col(Lesson.status) == LessonStatus.scheduled)
            .values(status=LessonStatus.cancelled, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        await record_audit(
            session,
            actor_user_id=None,
            actor_role=SYSTEM,
            action=LessonStatus.cancelled.value,
            entity_type="lesson",
            entity_id=lesson.id,
            before={"status": LessonStatus.scheduled.value},
            after={"status": LessonStatus.cancelled.value, "reason": _reason(closure), "closure_id": str(closure.id)},
        )
        if cancellation_outcome(CancelledBy.school, lesson.starts_at, now, policy) != Outcome.credit:
            return handled.model_copy(update={"result": "cancelled"})
        enrollment = await session.get(Enrollment, lesson.enrollment_id) if lesson.enrollment_id else None
        credit = MakeupCredit(
            parent_id=student.parent_id,
            student_id=student.id,
            teacher_id=lesson.teacher_id,
            instrument=enrollment.instrument if enrollment else student.instrument or "piano",
            lesson_minutes=int((lesson.ends_at - lesson.starts_at).total_seconds() // 60),
            origin_lesson_id=lesson.id,
            reason=_reason(closure),
            expires_at=credit_expiry(now, policy),
        )
        session.add(credit)
        await session.flush()
        await record_audit(
            session,
            actor_user_id=None,
            actor_role=SYSTEM,
            action="makeup_earn",
            entity_type="makeup_credit",
            entity_id=credit.id,
            after={"origin_lesson_id": str(lesson.id), "reason": credit.reason},
        )
        return _cancelled(handled, credit)

    @activity.defn(name="closure_notices")
    async def notices(self, request: ClosureNoticesRequest) -> ClosureNotices:
        """One notice per family and per teacher with their affected lessons, in the school's local time."""
        tz = self._settings.timezone
        async with self._sessions() as session:
            closure = await session.get(Closure, request.closure_id)
        if closure is None:
            days = ""
        elif closure.start_date == closure.end_date:
            days = f"{closure.start_date:%A} {closure.start_date.day} {closure.start_date:%B %Y}"
        else:
            days = f"{closure.start_date.isoformat()} to {closure.end_date.isoformat()}"
        by_parent: dict[uuid.UUID, list[str]] = defaultdict(list)
        by_teacher: dict[uuid.UUID, list[str]] = defaultdict(list)
        for lesson in request.handled:
            when = format_local(lesson.starts_at, tz)
            if lesson.result == "moved" and lesson.new_starts_at is not None:
                line = f"- {when}: moved to {format_local(lesson.new_starts_at, tz)}"
                by_parent[lesson.parent_id].append(line)
                by_teacher[lesson.teacher_id].append(line)
            elif lesson.result == "cancelled":
                credit = " (a make-up credit was added)" if lesson.credit_id else ""
                by_parent[lesson.parent_id].append(f"- {when}: cancelled{credit}")
                by_teacher[lesson.teacher_id].append(f"- {when}: cancelled")
        notices = [
            ClosureNotice(to="parent", parent_id=parent_id, days=days, lines="\n".join(lines))
            for parent_id, lines in by_parent.items()
        ]
        notices += [
            ClosureNotice(to="teacher", teacher_id=teacher_id, days=days, lines="\n".join(lines))
            for teacher_id, lines in by_teacher.items()
        ]
        return ClosureNotices(notices=notices)

    @activity.defn(name="closure_record_outcome")
    async def record_outcome(self, request: RecordOutcome) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(Closure)
                .where(col(Closure.id) == request.closure_id)
                .values(outcome=request.outcome.model_dump(mode="json"))
            )


def _cancelled(handled: LessonHandled, credit: MakeupCredit) -> LessonHandled:
    return handled.model_copy(
        update={"result": "cancelled", "credit_id": credit.id, "credit_expires_at": credit.expires_at}
    )
