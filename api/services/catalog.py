"""The catalogue's changes (instruments and rates, each audited) and the enrollment form's options."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.principal import Principal
from api.repositories import catalog as repository
from api.repositories.audit import audit_write, snapshot
from api.repositories.base import add_or_conflict, apply_changes, delete_or_conflict
from api.schemas.catalog import InstrumentCreate, RateCreate
from core.settings import Settings
from models import Instrument, LessonRate


async def create_instrument(session: AsyncSession, principal: Principal, body: InstrumentCreate) -> Instrument:
    instrument = Instrument(**body.model_dump())
    await add_or_conflict(session, instrument, f"the instrument {body.code} already exists")
    await audit_write(session, principal, "create", "instrument", instrument.code, after=snapshot(instrument))
    return instrument


async def update_instrument(
    session: AsyncSession, principal: Principal, code: str, changes: dict[str, Any]
) -> Instrument:
    instrument = await repository.instrument(session, code)
    before = snapshot(instrument)
    apply_changes(instrument, changes)
    await session.flush()
    await audit_write(session, principal, "update", "instrument", code, before=before, after=snapshot(instrument))
    return instrument


async def create_rate(session: AsyncSession, principal: Principal, body: RateCreate) -> LessonRate:
    await repository.require_instruments(session, [body.instrument], "instrument")
    rate = LessonRate(**body.model_dump())
    await add_or_conflict(session, rate, f"a rate for {body.minutes}-minute {body.instrument} lessons already exists")
    await audit_write(session, principal, "create", "lesson_rate", rate.id, after=snapshot(rate))
    return rate


async def update_rate(
    session: AsyncSession, principal: Principal, rate_id: uuid.UUID, changes: dict[str, Any]
) -> LessonRate:
    rate = await repository.rate(session, rate_id)
    before = snapshot(rate)
    apply_changes(rate, changes)
    await session.flush()
    await audit_write(session, principal, "update", "lesson_rate", rate.id, before=before, after=snapshot(rate))
    return rate


async def delete_rate(session: AsyncSession, principal: Principal, rate_id: uuid.UUID) -> None:
    rate = await repository.rate(session, rate_id)
    before = snapshot(rate)
    await delete_or_conflict(session, rate, "the rate is still in use")
    await audit_write(session, principal, "delete", "lesson_rate", rate_id, before=before)


async def enrollment_options(
    session: AsyncSession, settings: Settings
) -> tuple[Sequence[Instrument], Sequence[LessonRate]]:
    """The active instruments, and their rates for the lesson lengths the school offers."""
    instruments = await repository.active_instruments(session)
    rates = await repository.rates_for(
        session, [instrument.code for instrument in instruments], settings.lesson_lengths_minutes
    )
    return instruments, rates
