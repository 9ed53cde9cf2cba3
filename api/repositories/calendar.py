"""The school calendar's rows: academic years, their semesters and closures."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.pagination import PageParams, SortOrder, fetch_page
from api.repositories.base import get_one
from models import AcademicYear, Closure, Semester


async def list_years(session: AsyncSession, page: PageParams, order: SortOrder) -> tuple[Sequence[Any], int]:
    return await fetch_page(session, select(AcademicYear), page, order)


async def list_closures(
    session: AsyncSession,
    page: PageParams,
    order: SortOrder,
    academic_year_id: uuid.UUID | None,
    on_or_after: date | None,
    on_or_before: date | None,
) -> tuple[Sequence[Any], int]:
    query = select(Closure)
    if academic_year_id is not None:
        query = query.where(col(Closure.academic_year_id) == academic_year_id)
    if on_or_after is not None:
        query = query.where(col(Closure.end_date) >= on_or_after)
    if on_or_before is not None:
        query = query.where(col(Closure.start_date) <= on_or_before)
    return await fetch_page(session, query, page, order)


async def year(session: AsyncSession, year_id: uuid.UUID) -> AcademicYear:
    found: AcademicYear = await get_one(
        session, select(AcademicYear).where(col(AcademicYear.id) == year_id), "academic year"
    )
    return found


async def semester(session: AsyncSession, semester_id: uuid.UUID) -> Semester:
    found: Semester = await get_one(session, select(Semester).where(col(Semester.id) == semester_id), "semester")
    return found


async def closure(session: AsyncSession, closure_id: uuid.UUID) -> Closure:
    found: Closure = await get_one(session, select(Closure).where(col(Closure.id) == closure_id), "closure")
    return found


async def semesters_of(session: AsyncSession, year_id: uuid.UUID) -> Sequence[Semester]:
    query = select(Semester).where(col(Semester.academic_year_id) == year_id).order_by(col(Semester.start_date))
    return (await session.scalars(query)).all()


async def closures_of(session: AsyncSession, year_id: uuid.UUID) -> Sequence[Closure]:
    query = select(Closure).where(col(Closure.academic_year_id) == year_id).order_by(col(Closure.start_date))
    return (await session.scalars(query)).all()
