"""``/api/v1/academic-years``, semesters and closures: the school calendar (anyone reads it, admins change it)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Response

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.pagination import Page, PageDep, SortOrder, page_of, sorting
from api.principal import AdminPrincipal
from api.repositories import calendar as repository
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.calendar import (
    AcademicYearCreate,
    AcademicYearDetail,
    AcademicYearOut,
    AcademicYearUpdate,
    ClosureCreate,
    ClosureOut,
    ClosureUpdate,
    SemesterCreate,
    SemesterOut,
    SemesterUpdate,
)
from api.schemas.common import error_responses
from api.services import calendar as service
from models import AcademicYear, Closure, Semester

router = IndexedRouter(
    prefix="/api/v1",
    tags=["calendar"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 409, 422),
)

YearSort = Annotated[
    SortOrder, Depends(sorting({"start_date": AcademicYear.start_date, "name": AcademicYear.name}, "-start_date"))
]
ClosureSort = Annotated[SortOrder, Depends(sorting({"start_date": Closure.start_date}, "start_date"))]


@router.get("/academic-years", response_model=Page[AcademicYearOut], summary="List academic years")
async def list_years(session: SessionDep, page: PageDep, order: YearSort) -> dict[str, Any]:
    rows, total = await repository.list_years(session, page, order)
    return page_of(rows, total, page)


@router.get(
    "/academic-years/{year_id}", response_model=AcademicYearDetail, summary="A year with its semesters and closures"
)
async def get_year(session: SessionDep, year_id: uuid.UUID) -> dict[str, Any]:
    year, semesters, closures = await service.year_detail(session, year_id)
    return {**year.model_dump(), "semesters": semesters, "closures": closures}


@router.post("/academic-years", response_model=AcademicYearOut, status_code=201, summary="Add an academic year")
async def create_year(session: SessionDep, principal: AdminPrincipal, body: AcademicYearCreate) -> AcademicYear:
    return await service.create_year(session, principal, body)


@router.patch("/academic-years/{year_id}", response_model=AcademicYearOut, summary="Change an academic year")
async def update_year(
    session: SessionDep, principal: AdminPrincipal, year_id: uuid.UUID, body: AcademicYearUpdate
) -> AcademicYear:
    return await service.update_year(session, principal, year_id, body.changes())


@router.delete("/academic-years/{year_id}", status_code=204, summary="Delete a year with its semesters and closures")
async def delete_year(session: SessionDep, principal: AdminPrincipal, year_id: uuid.UUID) -> Response:
    await service.delete_year(session, principal, year_id)
    return Response(status_code=204)


@router.post(
    "/academic-years/{year_id}/semesters", response_model=SemesterOut, status_code=201, summary="Add a semester"
)
async def create_semester(
    session: SessionDep, principal: AdminPrincipal, year_id: uuid.UUID, body: SemesterCreate
) -> Semester:
    return await service.create_semester(session, principal, year_id, body)


@router.patch("/semesters/{semester_id}", response_model=SemesterOut, summary="Change a semester")
async def update_semester(
    session: SessionDep, principal: AdminPrincipal, semester_id: uuid.UUID, body: SemesterUpdate
) -> Semester:
    return await service.update_semester(session, principal, semester_id, body.changes())


@router.delete("/semesters/{semester_id}", status_code=204, summary="Delete a semester")
async def delete_semester(session: SessionDep, principal: AdminPrincipal, semester_id: uuid.UUID) -> Response:
    await service.delete_semester(session, principal, semester_id)
    return Response(status_code=204)


@router.get("/closures", response_model=Page[ClosureOut], summary="Days the school is closed")
async def list_closures(
    session: SessionDep,
    page: PageDep,
    order: ClosureSort,
    academic_year_id: uuid.UUID | None = None,
    on_or_after: date | None = None,
    on_or_before: date | None = None,
) -> dict[str, Any]:
    rows, total = await repository.list_closures(session, page, order, academic_year_id, on_or_after, on_or_before)
    return page_of(rows, total, page)


@router.post(
    "/academic-years/{year_id}/closures", response_model=ClosureOut, status_code=201, summary="Close the school"
)
async def create_closure(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    year_id: uuid.UUID,
    body: ClosureCreate,
) -> Closure:
    """Lessons already booked on the closed days are cancelled with a make-up credit each (``lesson_action``
    ``cancel``) or moved to the teacher's nearest free slot (``move``), by the closure's workflow; each family and
    teacher is told once. ``GET /closures/{id}`` shows the outcome. Deleting the closure does not restore them."""
    closure = await service.create_closure(session, principal, year_id, body)
    await service.handle_booked_lessons(session, temporal, settings, closure)
    return closure


@router.get("/closures/{closure_id}", response_model=ClosureOut, summary="A closure, with what it did to lessons")
async def get_closure(session: SessionDep, closure_id: uuid.UUID) -> Closure:
    return await repository.closure(session, closure_id)


@router.patch("/closures/{closure_id}", response_model=ClosureOut, summary="Change a closure")
async def update_closure(
    session: SessionDep, principal: AdminPrincipal, closure_id: uuid.UUID, body: ClosureUpdate
) -> Closure:
    return await service.update_closure(session, principal, closure_id, body.changes())


@router.delete("/closures/{closure_id}", status_code=204, summary="Reopen: delete a closure")
async def delete_closure(session: SessionDep, principal: AdminPrincipal, closure_id: uuid.UUID) -> Response:
    await service.delete_closure(session, principal, closure_id)
    return Response(status_code=204)
