"""The public catalogue: instruments, rates, teachers' public profiles and the enrollment form's options.

Anyone reads it (no token needed); only admins change instruments and rates.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Response

from api.deps import SessionDep, SettingsDep
from api.pagination import Page, PageDep, SortOrder, page_of, sorting
from api.principal import AdminPrincipal
from api.repositories import catalog as repository
from api.repositories.audit import bind_request_id
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
from api.services import catalog as service
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
    rows, total = await repository.list_instruments(session, page, order, is_active)
    return page_of(rows, total, page)


@router.post("/instruments", response_model=InstrumentOut, status_code=201, summary="Add an instrument")
async def create_instrument(session: SessionDep, principal: AdminPrincipal, body: InstrumentCreate) -> Instrument:
    return await service.create_instrument(session, principal, body)


@router.patch("/instruments/{code}", response_model=InstrumentOut, summary="Rename or retire an instrument")
async def update_instrument(
    session: SessionDep, principal: AdminPrincipal, code: InstrumentCode, body: InstrumentUpdate
) -> Instrument:
    return await service.update_instrument(session, principal, code, body.changes())


@router.get("/rates", response_model=Page[RateOut], summary="What weekly lessons cost")
async def list_rates(
    session: SessionDep,
    page: PageDep,
    order: RateSort,
    instrument: Annotated[str | None, Query(max_length=32)] = None,
    minutes: Annotated[int | None, Query(ge=1, le=240)] = None,
) -> dict[str, Any]:
    rows, total = await repository.list_rates(session, page, order, instrument, minutes)
    return page_of(rows, total, page)


@router.post("/rates", response_model=RateOut, status_code=201, summary="Add a rate")
async def create_rate(session: SessionDep, principal: AdminPrincipal, body: RateCreate) -> LessonRate:
    return await service.create_rate(session, principal, body)


@router.patch("/rates/{rate_id}", response_model=RateOut, summary="Change a rate's prices")
async def update_rate(
    session: SessionDep, principal: AdminPrincipal, rate_id: uuid.UUID, body: RateUpdate
) -> LessonRate:
    return await service.update_rate(session, principal, rate_id, body.changes())


@router.delete("/rates/{rate_id}", status_code=204, summary="Withdraw a rate")
async def delete_rate(session: SessionDep, principal: AdminPrincipal, rate_id: uuid.UUID) -> Response:
    await service.delete_rate(session, principal, rate_id)
    return Response(status_code=204)


@router.get("/catalog/teachers", response_model=Page[TeacherProfile], summary="Teachers' public profiles")
async def list_teacher_profiles(
    session: SessionDep,
    page: PageDep,
    order: ProfileSort,
    instrument: Annotated[str | None, Query(max_length=32)] = None,
) -> dict[str, Any]:
    rows, total = await repository.list_teacher_profiles(session, page, order, instrument)
    return page_of(rows, total, page)


@router.get("/catalog/teachers/{teacher_id}", response_model=TeacherProfile, summary="A teacher's public profile")
async def get_teacher_profile(session: SessionDep, teacher_id: uuid.UUID) -> Teacher:
    return await repository.teacher_profile(session, teacher_id)


@router.get("/enrollment-options", response_model=EnrollmentOptions, summary="What the enrollment form offers")
async def enrollment_options(session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    instruments, rates = await service.enrollment_options(session, settings)
    return {
        "instruments": instruments,
        "lesson_lengths_minutes": sorted(settings.lesson_lengths_minutes),
        "billing_intervals": [interval.value for interval in BillingInterval],
        "rates": rates,
        "student_min_age": settings.student_min_age,
        "student_max_age": settings.student_max_age,
        "currency": settings.currency,
        "timezone": settings.school_timezone,
    }
