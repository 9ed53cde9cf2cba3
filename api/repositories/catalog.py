"""The school's catalogue: instruments, rates and teachers' public profiles, and the checks requests meet."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import any_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.pagination import PageParams, SortOrder, fetch_page
from api.repositories.base import get_one, invalid
from models import Instrument, LessonRate, Teacher


async def require_instruments(session: AsyncSession, codes: Iterable[str], field: str) -> None:
    """422 on ``field`` unless every code names an instrument the school teaches."""
    wanted = set(codes)
    known = set((await session.scalars(select(col(Instrument.code)).where(col(Instrument.code).in_(wanted)))).all())
    unknown = sorted(wanted - known)
    if unknown:
        raise invalid(field, f"unknown instrument {', '.join(unknown)}")


async def list_instruments(
    session: AsyncSession, page: PageParams, order: SortOrder, is_active: bool | None
) -> tuple[Sequence[Any], int]:
    query = select(Instrument)
    if is_active is not None:
        query = query.where(col(Instrument.is_active) == is_active)
    return await fetch_page(session, query, page, order)


async def list_rates(
    session: AsyncSession, page: PageParams, order: SortOrder, instrument: str | None, minutes: int | None
) -> tuple[Sequence[Any], int]:
    query = select(LessonRate)
    if instrument is not None:
        query = query.where(col(LessonRate.instrument) == instrument)
    if minutes is not None:
        query = query.where(col(LessonRate.minutes) == minutes)
    return await fetch_page(session, query, page, order)


async def list_teacher_profiles(
    session: AsyncSession, page: PageParams, order: SortOrder, instrument: str | None
) -> tuple[Sequence[Any], int]:
    query = select(Teacher).where(col(Teacher.is_active))
    if instrument is not None:
        query = query.where(any_(col(Teacher.instruments)) == instrument)
    return await fetch_page(session, query, page, order)


async def instrument(session: AsyncSession, code: str) -> Instrument:
    found: Instrument = await get_one(session, select(Instrument).where(col(Instrument.code) == code), "instrument")
    return found


async def rate(session: AsyncSession, rate_id: uuid.UUID) -> LessonRate:
    found: LessonRate = await get_one(session, select(LessonRate).where(col(LessonRate.id) == rate_id), "rate")
    return found


async def teacher_profile(session: AsyncSession, teacher_id: uuid.UUID) -> Teacher:
    """An active teacher (an inactive one has no public profile: 404)."""
    found: Teacher = await get_one(
        session, select(Teacher).where(col(Teacher.id) == teacher_id, col(Teacher.is_active)), "teacher"
    )
    return found


async def active_instruments(session: AsyncSession) -> Sequence[Instrument]:
    query = select(Instrument).where(col(Instrument.is_active)).order_by(col(Instrument.name))
    return (await session.scalars(query)).all()


async def rates_for(session: AsyncSession, instruments: Iterable[str], minutes: Iterable[int]) -> Sequence[LessonRate]:
    query = (
        select(LessonRate)
        .where(col(LessonRate.instrument).in_(list(instruments)), col(LessonRate.minutes).in_(list(minutes)))
        .order_by(col(LessonRate.instrument), col(LessonRate.minutes))
    )
    return (await session.scalars(query)).all()
