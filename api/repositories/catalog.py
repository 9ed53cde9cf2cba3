"""Lookups in the school's catalogue that requests are checked against."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.repositories.base import invalid
from models import Instrument


async def require_instruments(session: AsyncSession, codes: Iterable[str], field: str) -> None:
    """422 on ``field`` unless every code names an instrument the school teaches."""
    wanted = set(codes)
    known = set((await session.scalars(select(col(Instrument.code)).where(col(Instrument.code).in_(wanted)))).all())
    unknown = sorted(wanted - known)
    if unknown:
        raise invalid(field, f"unknown instrument {', '.join(unknown)}")
