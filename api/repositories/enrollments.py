"""Enrollment rows: the idempotent insert behind the public form, and the look-ups around it."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, exists, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.pagination import PageParams, SortOrder, fetch_page
from api.principal import Principal
from api.repositories import scopes
from models import Enrollment, Lesson, Parent, Role, Teacher, User


async def list_enrollments(
    session: AsyncSession, principal: Principal, page: PageParams, order: SortOrder, states: Sequence[str]
) -> tuple[Sequence[Any], int]:
    query = scopes.enrollments(principal)
    if states:
        query = query.where(col(Enrollment.state).in_(states))
    return await fetch_page(session, query, page, order)


async def get(session: AsyncSession, enrollment_id: uuid.UUID) -> Enrollment | None:
    return await session.get(Enrollment, enrollment_id)


async def locked(session: AsyncSession, enrollment_id: uuid.UUID) -> Enrollment | None:
    """The row, locked for this transaction (two stops at once close it once)."""
    return await session.scalar(
        select(Enrollment)
        .where(col(Enrollment.id) == enrollment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )


async def last_lesson_end(session: AsyncSession, enrollment_id: uuid.UUID) -> datetime | None:
    """When the enrollment's last regular lesson that is not cancelled ends (None: it has none)."""
    return await session.scalar(
        select(func.max(col(Lesson.ends_at))).where(
            col(Lesson.enrollment_id) == enrollment_id,
            col(Lesson.kind) == "regular",
            col(Lesson.status) != "cancelled",
        )
    )


async def parent(session: AsyncSession, parent_id: uuid.UUID) -> Parent | None:
    return await session.get(Parent, parent_id)


async def idempotency_key_used(session: AsyncSession, key: str) -> bool:
    """True when an enrollment was already created under ``key`` (so this request is a client's retry)."""
    return bool(await session.scalar(select(exists().where(col(Enrollment.idempotency_key) == key))))


async def by_idempotency_key(session: AsyncSession, key: str) -> Enrollment | None:
    found: Enrollment | None = await session.scalar(select(Enrollment).where(col(Enrollment.idempotency_key) == key))
    return found


async def insert_unless_key_taken(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID | None:
    """Inserts the row; None when a concurrent request inserted one under the same idempotency key first."""
    inserted: uuid.UUID | None = await session.scalar(
        insert(Enrollment)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(col(Enrollment.id))
    )
    return inserted


async def delete_enrollment(session: AsyncSession, enrollment_id: uuid.UUID) -> None:
    await session.execute(delete(Enrollment).where(col(Enrollment.id) == enrollment_id))


async def account_role(session: AsyncSession, email: str) -> Role | None:
    """The role of the login account holding ``email`` (lower case), if any."""
    role: Role | None = await session.scalar(select(col(User.role)).where(col(User.email) == email))
    return role


async def lesson_start(session: AsyncSession, lesson_id: uuid.UUID | None) -> datetime | None:
    lesson = await session.get(Lesson, lesson_id) if lesson_id else None
    return lesson.starts_at if lesson is not None else None


async def teacher(session: AsyncSession, teacher_id: uuid.UUID | None) -> Teacher | None:
    return await session.get(Teacher, teacher_id) if teacher_id else None


async def teachers_and_demos(
    session: AsyncSession, rows: Sequence[Enrollment]
) -> tuple[dict[uuid.UUID, str], dict[uuid.UUID, datetime]]:
    """For a page of enrollments the caller may see: their teachers' display names and their demo lessons'
    starts, each by its id."""
    teacher_ids = {row.teacher_id for row in rows if row.teacher_id}
    demo_ids = {row.demo_lesson_id for row in rows if row.demo_lesson_id}
    teachers: dict[uuid.UUID, str] = {}
    demos: dict[uuid.UUID, datetime] = {}
    if teacher_ids:
        names = await session.execute(
            select(col(Teacher.id), col(Teacher.display_name)).where(col(Teacher.id).in_(teacher_ids))
        )
        teachers = dict(names.tuples().all())
    if demo_ids:
        starts = await session.execute(
            select(col(Lesson.id), col(Lesson.starts_at)).where(col(Lesson.id).in_(demo_ids))
        )
        demos = dict(starts.tuples().all())
    return teachers, demos
