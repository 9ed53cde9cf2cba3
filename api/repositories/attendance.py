"""Attendance's SQL: the lessons the principal may see (a teacher their own) that start in a period."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.principal import Principal
from api.repositories import scopes
from models import Lesson

REPORT_ROW_LIMIT = 50_000


async def lessons_in(
    session: AsyncSession,
    principal: Principal,
    since: datetime,
    before: datetime,
    student_id: uuid.UUID | None,
    teacher_id: uuid.UUID | None,
) -> list[Any]:
    query = scopes.lessons(principal).where(col(Lesson.starts_at) >= since, col(Lesson.starts_at) < before)
    if student_id is not None:
        query = query.where(col(Lesson.student_id) == student_id)
    if teacher_id is not None:
        query = query.where(col(Lesson.teacher_id) == teacher_id)
    columns = (
        query.with_only_columns(
            col(Lesson.student_id),
            col(Lesson.teacher_id),
            col(Lesson.status),
            col(Lesson.attendance),
            col(Lesson.starts_at),
            col(Lesson.ends_at),
        )
        .order_by(col(Lesson.starts_at))
        .limit(REPORT_ROW_LIMIT)
    )
    return list((await session.execute(columns)).all())
