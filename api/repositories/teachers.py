"""Teachers' rows as a principal may see them, their weekly availability and their time off."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import any_, delete, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.pagination import PageParams, SortOrder, fetch_page
from api.principal import Principal
from api.repositories import scopes
from api.repositories.base import get_one
from models import Teacher, TeacherAvailability, TeacherTimeOff


async def list_teachers(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    order: SortOrder,
    instrument: str | None,
    is_active: bool | None,
    name: str | None,
) -> tuple[Sequence[Any], int]:
    query = scopes.teachers(principal)
    if instrument is not None:
        query = query.where(any_(col(Teacher.instruments)) == instrument)
    if is_active is not None:
        query = query.where(col(Teacher.is_active) == is_active)
    if name:
        query = query.where(
            or_(
                col(Teacher.first_name).icontains(name, autoescape=True),
                col(Teacher.last_name).icontains(name, autoescape=True),
                col(Teacher.display_name).icontains(name, autoescape=True),
            )
        )
    return await fetch_page(session, query, page, order)


async def teacher(session: AsyncSession, principal: Principal, teacher_id: uuid.UUID) -> Teacher:
    """The teacher, if the principal may see them (an admin: anyone; a teacher: themself); else 404."""
    found: Teacher = await get_one(session, scopes.teachers(principal).where(col(Teacher.id) == teacher_id), "teacher")
    return found


async def windows(session: AsyncSession, teacher_id: uuid.UUID) -> list[TeacherAvailability]:
    query = (
        select(TeacherAvailability)
        .where(col(TeacherAvailability.teacher_id) == teacher_id)
        .order_by(col(TeacherAvailability.weekday), col(TeacherAvailability.start_time))
    )
    return list((await session.scalars(query)).all())


async def replace_windows(
    session: AsyncSession, teacher_id: uuid.UUID, replacements: Iterable[TeacherAvailability]
) -> None:
    """Deletes the teacher's week and adds ``replacements`` (written at the next flush)."""
    await session.execute(delete(TeacherAvailability).where(col(TeacherAvailability.teacher_id) == teacher_id))
    session.add_all(replacements)


async def list_time_off(
    session: AsyncSession, teacher_id: uuid.UUID, page: PageParams, order: SortOrder
) -> tuple[Sequence[Any], int]:
    query = select(TeacherTimeOff).where(col(TeacherTimeOff.teacher_id) == teacher_id)
    return await fetch_page(session, query, page, order)


async def time_off(session: AsyncSession, teacher_id: uuid.UUID, time_off_id: uuid.UUID) -> TeacherTimeOff:
    found: TeacherTimeOff = await get_one(
        session,
        select(TeacherTimeOff).where(
            col(TeacherTimeOff.id) == time_off_id, col(TeacherTimeOff.teacher_id) == teacher_id
        ),
        "time off",
    )
    return found
