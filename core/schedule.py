"""A teacher's free time as the database holds it, and moving a lesson under the database's rules: shared by
the closures' activities and the API's teacher changes, which rebook lessons the same way."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, union_all, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.calendar import Closure as ClosureDays
from domain.calendar import WeeklyWindow
from domain.teacher_changes import nearest_slots, semester_of, term_bounds
from models import BLOCKING_STATUSES, Closure, Lesson, Semester, TeacherAvailability, TeacherTimeOff

TEACHER_OVERLAP_CONSTRAINT = "ex_lessons_teacher_no_overlap"
STUDENT_START_CONSTRAINT = "uq_lessons_student_kind_start"
# Candidate slots tried for one lesson before it is given up as unmovable.
MAX_ATTEMPTS = 40
# How far either side of a lesson its new slot is looked for first.
NEAR = timedelta(days=14)

Interval = tuple[datetime, datetime]


@dataclass(frozen=True)
class FreeTime:
    """What decides where a teacher can take a student: their week, the taken time of both, the closed days."""

    availability: list[WeeklyWindow]
    busy: list[Interval]
    closures: list[ClosureDays]
    semesters: list[tuple[date, date]]


async def free_time(
    session: AsyncSession,
    teacher_id: uuid.UUID,
    student_id: uuid.UUID,
    start: datetime,
    end: datetime,
    ignore: Sequence[uuid.UUID] = (),
) -> FreeTime:
    """The teacher's availability, closures and semesters, and the time between ``start`` and ``end`` taken by
    the teacher (lessons, time off) or the student (lessons); the lessons in ``ignore`` (being moved) are free."""
    windows = [
        WeeklyWindow(row.weekday, row.start_time, row.end_time)
        for row in await session.scalars(
            select(TeacherAvailability).where(col(TeacherAvailability.teacher_id) == teacher_id)
        )
    ]
    lessons = select(col(Lesson.starts_at), col(Lesson.ends_at)).where(
        or_(col(Lesson.teacher_id) == teacher_id, col(Lesson.student_id) == student_id),
        col(Lesson.status).in_(BLOCKING_STATUSES),
        col(Lesson.ends_at) > start,
        col(Lesson.starts_at) < end,
        col(Lesson.id).not_in(list(ignore)) if ignore else col(Lesson.id).is_not(None),
    )
    time_off = select(col(TeacherTimeOff.starts_at), col(TeacherTimeOff.ends_at)).where(
        col(TeacherTimeOff.teacher_id) == teacher_id,
        col(TeacherTimeOff.ends_at) > start,
        col(TeacherTimeOff.starts_at) < end,
    )
    busy = [(a, b) for a, b in await session.execute(union_all(lessons, time_off))]
    closures = [
        ClosureDays(a, b) for a, b in await session.execute(select(col(Closure.start_date), col(Closure.end_date)))
    ]
    semesters = [(a, b) for a, b in await session.execute(select(col(Semester.start_date), col(Semester.end_date)))]
    return FreeTime(windows, busy, closures, semesters)


def candidates(
    free: FreeTime, starts_at: datetime, ends_at: datetime, earliest: datetime, tz: ZoneInfo
) -> list[Interval]:
    """Where the lesson at [starts_at, ends_at) may go, nearest its own time first: the teacher's free slots from
    ``earliest`` to the end of the lesson's semester, at most ``MAX_ATTEMPTS``. The weeks around the lesson are
    searched first; the rest of the semester only when they have nothing (every slot there is farther)."""
    term = semester_of(free.semesters, starts_at.astimezone(tz).date())
    if term is None:
        return []
    first, last = term_bounds(*term, tz)
    low = max(earliest, first)

    def search(start: datetime, end: datetime) -> list[Interval]:
        return nearest_slots(
            free.availability,
            free.busy,
            free.closures,
            ends_at - starts_at,
            starts_at,
            start,
            end,
            tz,
            limit=MAX_ATTEMPTS,
        )

    near = search(max(low, starts_at - NEAR), min(last, max(low, starts_at) + NEAR))
    return near or search(low, last)


async def try_place(
    session: AsyncSession, lesson_id: uuid.UUID, teacher_id: uuid.UUID, starts_at: datetime, ends_at: datetime
) -> bool:
    """Gives the lesson this teacher and time, or nothing when the database refuses it (the teacher's overlap
    rule, the student's one lesson per start): in a savepoint, so the transaction goes on."""
    try:
        async with session.begin_nested():
            await session.execute(
                update(Lesson)
                .where(col(Lesson.id) == lesson_id)
                .values(teacher_id=teacher_id, starts_at=starts_at, ends_at=ends_at, updated_at=datetime.now(UTC))
                .execution_options(synchronize_session=False)
            )
    except IntegrityError as exc:
        if TEACHER_OVERLAP_CONSTRAINT in str(exc.orig) or STUDENT_START_CONSTRAINT in str(exc.orig):
            return False
        raise
    return True


async def rebook(
    session: AsyncSession,
    lesson: Lesson,
    teacher_id: uuid.UUID,
    earliest: datetime,
    tz: ZoneInfo,
    ignore: Sequence[uuid.UUID] = (),
) -> Interval | None:
    """Moves ``lesson`` to ``teacher_id`` at the free slot of the teacher nearest its own time (its own time when
    free) from ``earliest`` within its semester; None when none is free (the lesson is left as it was)."""
    lesson_id, student_id, starts_at, ends_at = lesson.id, lesson.student_id, lesson.starts_at, lesson.ends_at
    window_end = starts_at + timedelta(days=400)
    free = await free_time(session, teacher_id, student_id, earliest, window_end, [lesson_id, *ignore])
    for start, end in candidates(free, starts_at, ends_at, earliest, tz):
        if await try_place(session, lesson_id, teacher_id, start, end):
            return start, end
    return None
