"""The public catalogue: instruments, rates, teachers' public profiles and the enrollment form's options.

Anyone reads it (no token needed); only admins change instruments and rates.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Response
from sqlalchemy import any_, select
from sqlmodel import col

from api.deps import SessionDep, SettingsDep
from api.pagination import Page, PageDep, SortOrder, fetch_page, page_of, sorting
from api.principal import AdminPrincipal
from api.repositories.audit import audit_write, bind_request_id, snapshot
from api.repositories.base import apply_changes, delete_or_conflict, flush_or_conflict, get_one
from api.repositories.catalog import require_instruments
from api.routing import IndexedRouter
from api.schemas.catalog import (
    EnrollmentOptions,
    InstrumentCreate,
    InstrumentOut,
    InstrumentUpdate,
    RateCreate,
    RateOut,
    RateUpdate,
    TeacherProfile,
)
from api.schemas.common import error_responses
from models import BillingInterval, Instrument, LessonRate, Teacher

router = IndexedRouter(
    prefix="/api/v1",
    tags=["catalog"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 409, 422),
)

InstrumentSort = Annotated[SortOrder, Depends(sorting({"code": Instrument.code, "name": Instrument.name}, "name"))]
RateSort = Annotated[
    SortOrder, Depends(sorting({"instrument": LessonRate.instrument, "minutes": LessonRate.minutes}, "instrument"))
]
ProfileSort = Annotated[SortOrder, Depends(sorting({"display_name": Teacher.display_name}, "display_name"))]
InstrumentCode = Annotated[str, Path(max_length=32)]


@router.get("/instruments", response_model=Page[InstrumentOut], summary="Instruments the school teaches")
async def list_instruments(
    session: SessionDep, page: PageDep, order: InstrumentSort, is_active: bool | None = None
) -> dict[str, Any]:
    query = select(Instrument)
    if is_active is not None:
        query = query.where(col(Instrument.is_active) == is_active)
    rows, total = await fetch_page(session, query, page, order)
    return page_of(rows, total, page)


@router.post("/instruments", response_model=InstrumentOut, status_code=201, summary="Add an instrument")
async def create_instrument(session: SessionDep, principal: AdminPrincipal, body: InstrumentCreate) -> Instrument:
    instrument = Instrument(**body.model_dump())
    session.add(instrument)
    await flush_or_conflict(session, f"the instrument {body.code} already exists")
    await audit_write(session, principal, "create", "instrument", instrument.code, after=snapshot(instrument))
    return instrument


@router.patch("/instruments/{code}", response_model=InstrumentOut, summary="Rename or retire an instrument")
async def update_instrument(
    session: SessionDep, principal: AdminPrincipal, code: InstrumentCode, body: InstrumentUpdate
) -> Instrument:
    instrument: Instrument = await get_one(
        session, select(Instrument).where(col(Instrument.code) == code), "instrument"
    )
    before = snapshot(instrument)
    apply_changes(instrument, body.changes())
    await session.flush()
    await audit_write(session, principal, "update", "instrument", code, before=before, after=snapshot(instrument))
    return instrument


@router.get("/rates", response_model=Page[RateOut], summary="What weekly lessons cost")
async def list_rates(
    session: SessionDep,
    page: PageDep,
    order: RateSort,
    instrument: Annotated[str | None, Query(max_length=32)] = None,
    minutes: Annotated[int | None, Query(ge=1, le=240)] = None,
) -> dict[str, Any]:
    query = select(LessonRate)
    if instrument is not None:
        query = query.where(col(LessonRate.instrument) == instrument)
    if minutes is not None:
        query = query.where(col(LessonRate.minutes) == minutes)
    rows, total = await fetch_page(session, query, page, order)
    return page_of(rows, total, page)


@router.post("/rates", response_model=RateOut, status_code=201, summary="Add a rate")
async def create_rate(session: SessionDep, principal: AdminPrincipal, body: RateCreate) -> LessonRate:
    await require_instruments(session, [body.instrument], "instrument")
    rate = LessonRate(**body.model_dump())
    session.add(rate)
    await flush_or_conflict(session, f"a rate for {body.minutes}-minute {body.instrument} lessons already exists")
    await audit_write(session, principal, "create", "lesson_rate", rate.id, after=snapshot(rate))
    return rate


async def _rate(session: SessionDep, rate_id: uuid.UUID) -> LessonRate:
    rate: LessonRate = await get_one(session, select(LessonRate).where(col(LessonRate.id) == rate_id), "rate")
    return rate


@router.patch("/rates/{rate_id}", response_model=RateOut, summary="Change a rate's prices")
async def update_rate(
    session: SessionDep, principal: AdminPrincipal, rate_id: uuid.UUID, body: RateUpdate
) -> LessonRate:
    rate = await _rate(session, rate_id)
    before = snapshot(rate)
    apply_changes(rate, body.changes())
    await session.flush()
    await audit_write(session, principal, "update", "lesson_rate", rate.id, before=before, after=snapshot(rate))
    return rate


@router.delete("/rates/{rate_id}", status_code=204, summary="Withdraw a rate")
async def delete_rate(session: SessionDep, principal: AdminPrincipal, rate_id: uuid.UUID) -> Response:
    rate = await _rate(session, rate_id)
    before = snapshot(rate)
    await delete_or_conflict(session, rate, "the rate is still in use")
    await audit_write(session, principal, "delete", "lesson_rate", rate_id, before=before)
    return Response(status_code=204)


@router.get("/catalog/teachers", response_model=Page[TeacherProfile], summary="Teachers' public profiles")
async def list_teacher_profiles(
    session: SessionDep,
    page: PageDep,
    order: ProfileSort,
    instrument: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    query = select(Teacher).where(col(Teacher.is_active))
    if instrument is not None:
        query = query.where(any_(col(Teacher.instruments)) == instrument)
    rows, total = await fetch_page(session, query, page, order)
    return page_of(rows, total, page)


@router.get("/catalog/teachers/{teacher_id}", response_model=TeacherProfile, summary="A teacher's public profile")
async def get_teacher_profile(session: SessionDep, teacher_id: uuid.UUID) -> Teacher:
    teacher: Teacher = await get_one(
        session, select(Teacher).where(col(Teacher.id) == teacher_id, col(Teacher.is_active)), "teacher"
    )
    return teacher


@router.get("/enrollment-options", response_model=EnrollmentOptions, summary="What the enrollment form offers")
async def enrollment_options(session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    instruments = (
        await session.scalars(select(Instrument).where(col(Instrument.is_active)).order_by(col(Instrument.name)))
    ).all()
    active = [instrument.code for instrument in instruments]
    rates = await session.scalars(
        select(LessonRate)
        .where(col(LessonRate.instrument).in_(active), col(LessonRate.minutes).in_(settings.lesson_lengths_minutes))
        .order_by(col(LessonRate.instrument), col(LessonRate.minutes))
    )
    return {
        "instruments": instruments,
        "lesson_lengths_minutes": sorted(settings.lesson_lengths_minutes),
        "billing_intervals": [interval.value for interval in BillingInterval],
        "rates": rates.all(),
        "student_min_age": settings.student_min_age,
        "student_max_age": settings.student_max_age,
        "currency": settings.currency,
        "timezone": settings.school_timezone,
    }
