"""Students' rows as a principal may see them (parents their children, teachers the students they teach)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.pagination import PageParams, SortOrder, fetch_page
from api.principal import Principal
from api.repositories import scopes
from api.repositories.base import get_one
from models import Parent, Student


async def list_students(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    order: SortOrder,
    parent_id: uuid.UUID | None,
    instrument: str | None,
    is_active: bool | None,
    name: str | None,
) -> tuple[Sequence[Any], int]:
    query = scopes.students(principal)
    if parent_id is not None:
        query = query.where(col(Student.parent_id) == parent_id)
    if instrument is not None:
        query = query.where(col(Student.instrument) == instrument)
    if is_active is not None:
        query = query.where(col(Student.is_active) == is_active)
    if name:
        query = query.where(
            or_(
                col(Student.first_name).icontains(name, autoescape=True),
                col(Student.last_name).icontains(name, autoescape=True),
            )
        )
    return await fetch_page(session, query, page, order)


async def student(session: AsyncSession, principal: Principal, student_id: uuid.UUID) -> Student:
    """The student, if the principal may see them; else 404."""
    found: Student = await get_one(session, scopes.students(principal).where(col(Student.id) == student_id), "student")
    return found


async def parent_exists(session: AsyncSession, parent_id: uuid.UUID) -> bool:
    return await session.get(Parent, parent_id) is not None


async def first_names(session: AsyncSession, principal: Principal, student_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The first names of those of ``student_ids`` the principal may see, by id."""
    if not student_ids:
        return {}
    query = scopes.students(principal).where(col(Student.id).in_(student_ids))
    return {student.id: student.first_name for student in await session.scalars(query)}
