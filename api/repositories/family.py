"""What a family's own pages read, each query scoped by the caller (``scopes``): another family's rows are not
found."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.principal import Principal
from api.repositories import scopes
from models import Lesson, LessonStatus, Student, Teacher


async def students(session: AsyncSession, principal: Principal) -> Sequence[Student]:
    query = scopes.students(principal).order_by(col(Student.first_name), col(Student.id))
    return list(await session.scalars(query))


async def upcoming_lessons(
    session: AsyncSession, principal: Principal, after: datetime, limit: int
) -> Sequence[Lesson]:
    query = (
        scopes.lessons(principal)
        .where(
            col(Lesson.starts_at) >= after,
            col(Lesson.status).in_([LessonStatus.scheduled.value, LessonStatus.suspended.value]),
        )
        .order_by(col(Lesson.starts_at))
        .limit(limit)
    )
    return list(await session.scalars(query))


async def teacher_names(session: AsyncSession, teacher_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Display names (public, as on the enrollment status) of the teachers of the family's own lessons."""
    ids = set(teacher_ids)
    if not ids:
        return {}
    rows = await session.execute(select(col(Teacher.id), col(Teacher.display_name)).where(col(Teacher.id).in_(ids)))
    return {teacher_id: str(name) for teacher_id, name in rows.all()}
