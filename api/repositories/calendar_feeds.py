"""The SQL of calendar feeds: the owner's active feed, a feed by its secret's hash, and what a feed shows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import CalendarFeed, Closure, Lesson, Parent, Student, Teacher, User

# A feed shows this many lessons at most (the newest-starting ones are dropped past it).
MAX_LESSONS = 2000


@dataclass(frozen=True)
class FeedLesson:
    lesson: Lesson
    student_first_name: str
    teacher_display_name: str


def _owner_clause(parent_id: uuid.UUID | None, teacher_id: uuid.UUID | None) -> object:
    if parent_id is not None:
        return col(CalendarFeed.parent_id) == parent_id
    return col(CalendarFeed.teacher_id) == teacher_id


async def active_feed(
    session: AsyncSession, *, parent_id: uuid.UUID | None = None, teacher_id: uuid.UUID | None = None
) -> CalendarFeed | None:
    query = select(CalendarFeed).where(
        _owner_clause(parent_id, teacher_id),  # type: ignore[arg-type]
        col(CalendarFeed.revoked_at).is_(None),
    )
    found: CalendarFeed | None = await session.scalar(query)
    return found


async def live_feed_by_hash(session: AsyncSession, secret_hash: str) -> CalendarFeed | None:
    """The feed holding this secret, when neither it nor its owner is gone: not revoked, the family not erased and
    its login active, the teacher active. Anything else is no feed (404)."""
    query = (
        select(CalendarFeed)
        .outerjoin(Parent, col(Parent.id) == col(CalendarFeed.parent_id))
        .outerjoin(Teacher, col(Teacher.id) == col(CalendarFeed.teacher_id))
        .outerjoin(User, col(User.id) == col(Parent.user_id))
        .where(
            col(CalendarFeed.secret_hash) == secret_hash,
            col(CalendarFeed.revoked_at).is_(None),
            or_(
                and_(
                    col(CalendarFeed.parent_id).is_not(None),
                    col(Parent.erased_at).is_(None),
                    col(User.is_active).is_(True),
                ),
                and_(col(CalendarFeed.teacher_id).is_not(None), col(Teacher.is_active).is_(True)),
            ),
        )
    )
    found: CalendarFeed | None = await session.scalar(query)
    return found


async def lessons(session: AsyncSession, feed: CalendarFeed, since: datetime) -> list[FeedLesson]:
    """The family's (its children's) or the teacher's lessons starting from ``since``, with the two names shown."""
    query = (
        select(Lesson, col(Student.first_name), col(Teacher.display_name))
        .join(Student, col(Student.id) == col(Lesson.student_id))
        .join(Teacher, col(Teacher.id) == col(Lesson.teacher_id))
        .where(col(Lesson.starts_at) >= since)
        .order_by(col(Lesson.starts_at), col(Lesson.id))
        .limit(MAX_LESSONS)
    )
    if feed.parent_id is not None:
        query = query.where(col(Student.parent_id) == feed.parent_id)
    else:
        query = query.where(col(Lesson.teacher_id) == feed.teacher_id)
    rows = await session.execute(query)
    return [FeedLesson(lesson, str(first), str(display)) for lesson, first, display in rows.all()]


async def closures(session: AsyncSession, since: date) -> Sequence[Closure]:
    query = select(Closure).where(col(Closure.end_date) >= since).order_by(col(Closure.start_date), col(Closure.id))
    return list(await session.scalars(query))
