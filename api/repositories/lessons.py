"""Placing a lesson on a teacher's calendar: time off, closures, availability, and the no-overlap constraint.

The PostgreSQL exclusion constraint ``ex_lessons_teacher_no_overlap`` has the last word on a teacher's
overlapping lessons: the write is attempted inside a savepoint, and when the constraint refuses it the
conflicting lesson is looked up and reported (409), so two concurrent bookings can never both succeed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.errors import CedarError
from api.pagination import PageParams, SortOrder, fetch_page
from api.principal import Principal
from api.repositories import scopes
from api.repositories.base import get_one
from core.db import lock_keys, schedule_lock_keys
from core.settings import Settings
from domain.calendar import WeeklyWindow
from models import BLOCKING_STATUSES, Closure, Lesson, LessonKind, LessonStatus, TeacherAvailability, TeacherTimeOff

TEACHER_OVERLAP_CONSTRAINT = "ex_lessons_teacher_no_overlap"
STUDENT_START_CONSTRAINT = "uq_lessons_student_kind_start"


def lesson_conflict(other: Lesson, whose: str) -> CedarError:
    return CedarError(
        409,
        "lesson_conflict",
        f"{whose} already has a lesson from {other.starts_at.isoformat()} to {other.ends_at.isoformat()}",
        {
            "conflicting_lesson_id": str(other.id),
            "conflicting_starts_at": other.starts_at.isoformat(),
            "conflicting_ends_at": other.ends_at.isoformat(),
        },
    )


@dataclass(frozen=True)
class Slot:
    """Where a lesson is to be: captured before any write, so a refused write can still be explained."""

    lesson_id: uuid.UUID
    teacher_id: uuid.UUID
    student_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime

    @classmethod
    def of(cls, lesson: Lesson) -> Slot:
        return cls(lesson.id, lesson.teacher_id, lesson.student_id, lesson.starts_at, lesson.ends_at)


async def first_overlapping_lesson(
    session: AsyncSession,
    owner: ColumnElement[bool],
    starts_at: datetime,
    ends_at: datetime,
    exclude_id: uuid.UUID | None = None,
) -> Lesson | None:
    """The earliest lesson matching ``owner`` that holds time in [starts_at, ends_at) (touching is no overlap)."""
    query = select(Lesson).where(
        owner,
        col(Lesson.status).in_(BLOCKING_STATUSES),
        col(Lesson.starts_at) < ends_at,
        col(Lesson.ends_at) > starts_at,
    )
    if exclude_id is not None:
        query = query.where(col(Lesson.id) != exclude_id)
    found: Lesson | None = await session.scalar(query.order_by(col(Lesson.starts_at)).limit(1))
    return found


async def _check_time_off(session: AsyncSession, slot: Slot) -> None:
    time_off = await session.scalar(
        select(TeacherTimeOff)
        .where(
            col(TeacherTimeOff.teacher_id) == slot.teacher_id,
            col(TeacherTimeOff.starts_at) < slot.ends_at,
            col(TeacherTimeOff.ends_at) > slot.starts_at,
        )
        .limit(1)
    )
    if time_off is not None:
        raise CedarError(
            409,
            "teacher_time_off",
            f"the teacher is off from {time_off.starts_at.isoformat()} to {time_off.ends_at.isoformat()}",
            {
                "time_off_id": str(time_off.id),
                "time_off_starts_at": time_off.starts_at.isoformat(),
                "time_off_ends_at": time_off.ends_at.isoformat(),
            },
        )


async def _check_closures(session: AsyncSession, slot: Slot, settings: Settings) -> None:
    day = slot.starts_at.astimezone(settings.timezone).date()
    closure = await session.scalar(
        select(Closure).where(col(Closure.start_date) <= day, col(Closure.end_date) >= day).limit(1)
    )
    if closure is not None:
        raise CedarError(
            409,
            "school_closed",
            f"the school is closed on {day.isoformat()} ({closure.reason})",
            {"starts_at": closure.reason},
        )


async def _check_availability(session: AsyncSession, slot: Slot, settings: Settings) -> None:
    start = slot.starts_at.astimezone(settings.timezone)
    end = slot.ends_at.astimezone(settings.timezone)
    rows = (
        await session.scalars(
            select(TeacherAvailability).where(
                col(TeacherAvailability.teacher_id) == slot.teacher_id,
                col(TeacherAvailability.weekday) == start.weekday(),
            )
        )
    ).all()
    windows = [WeeklyWindow(row.weekday, row.start_time, row.end_time) for row in rows]
    fits = end.date() == start.date() and any(w.contains(start.time(), end.time()) for w in windows)
    if not fits:
        raise CedarError(
            409,
            "outside_availability",
            "the lesson is outside the teacher's weekly availability",
            {"starts_at": "outside the teacher's availability"},
        )


async def place_lesson(
    session: AsyncSession, lesson: Lesson, slot: Slot, settings: Settings, *, within_availability: bool
) -> None:
    """Moves ``lesson`` (new or existing) to ``slot`` and writes it, or raises a 409 naming what it collides with."""
    await lock_keys(session, *schedule_lock_keys(slot.teacher_id, slot.student_id))
    await _check_time_off(session, slot)
    await _check_closures(session, slot, settings)
    if within_availability:
        await _check_availability(session, slot, settings)
    student_clash = await first_overlapping_lesson(
        session, col(Lesson.student_id) == slot.student_id, slot.starts_at, slot.ends_at, slot.lesson_id
    )
    if student_clash is not None:
        raise lesson_conflict(student_clash, "the student")
    try:
        # Every change to the lesson happens inside the savepoint, so a refused write leaves the request's
        # transaction usable for looking up what it collided with.
        async with session.begin_nested():
            lesson.starts_at, lesson.ends_at, lesson.updated_at = slot.starts_at, slot.ends_at, datetime.now(UTC)
            session.add(lesson)
            await session.flush()
    except IntegrityError as exc:
        if TEACHER_OVERLAP_CONSTRAINT in str(exc.orig):
            clash = await first_overlapping_lesson(
                session, col(Lesson.teacher_id) == slot.teacher_id, slot.starts_at, slot.ends_at, slot.lesson_id
            )
            if clash is not None:
                raise lesson_conflict(clash, "the teacher") from exc
        if STUDENT_START_CONSTRAINT in str(exc.orig):
            raise CedarError(409, "lesson_conflict", "the student already has such a lesson at that time") from exc
        raise CedarError(409, "conflict", "the lesson could not be saved") from exc


async def list_lessons(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    order: SortOrder,
    student_id: uuid.UUID | None,
    teacher_id: uuid.UUID | None,
    status: LessonStatus | None,
    kind: LessonKind | None,
    starts_from: datetime | None,
    starts_before: datetime | None,
) -> tuple[Sequence[Any], int]:
    query = scopes.lessons(principal)
    for column, value in (
        (col(Lesson.student_id), student_id),
        (col(Lesson.teacher_id), teacher_id),
        (col(Lesson.status), status),
        (col(Lesson.kind), kind),
    ):
        if value is not None:
            query = query.where(column == value)
    if starts_from is not None:
        query = query.where(col(Lesson.starts_at) >= starts_from)
    if starts_before is not None:
        query = query.where(col(Lesson.starts_at) < starts_before)
    return await fetch_page(session, query, page, order)


async def lesson(session: AsyncSession, principal: Principal, lesson_id: uuid.UUID) -> Lesson:
    """The lesson, if the principal may see it; else 404."""
    found: Lesson = await get_one(session, scopes.lessons(principal).where(col(Lesson.id) == lesson_id), "lesson")
    return found
