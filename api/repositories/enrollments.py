"""Enrollment look-ups that live outside the enrollment routes."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import Enrollment


async def idempotency_key_used(session: AsyncSession, key: str) -> bool:
    """True when an enrollment was already created under ``key`` (so this request is a client's retry)."""
    return bool(await session.scalar(select(exists().where(col(Enrollment.idempotency_key) == key))))
