"""``/api/v1/academic-years``, semesters and closures: the school calendar (anyone reads it, admins change it)."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.deps import SessionDep
from api.pagination import Page, PageDep, SortOrder, fetch_page, page_of, sorting
from api.principal import AdminPrincipal, Principal
from api.repositories.audit import audit_write, bind_request_id, snapshot
from api.repositories.base import apply_changes, flush_or_conflict, get_one, invalid
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


async def _year(session: AsyncSession, year_id: uuid.UUID) -> AcademicYear:
    year: AcademicYear = await get_one(
        session, select(AcademicYear).where(col(AcademicYear.id) == year_id), "academic year"
    )
    return year


def _check_order(row: Any, *, same_day_allowed: bool) -> None:
    if row.end_date < row.start_date or (row.end_date == row.start_date and not same_day_allowed):
        raise invalid("end_date", "end_date must be after start_date")


def _check_inside(year: AcademicYear, start: date, end: date) -> None:
    if start < year.start_date or end > year.end_date:
        raise invalid("start_date", f"must lie within the academic year {year.start_date} to {year.end_date}")


async def _create(session: AsyncSession, principal: Principal, row: Any, entity: str, what: str) -> None:
    session.add(row)
    await flush_or_conflict(session, f"{what} already exists")
    await audit_write(session, principal, "create", entity, row.id, after=snapshot(row))


async def _update(
    session: AsyncSession,
    principal: Principal,
    row: Any,
    changes: dict[str, Any],
    entity: str,
    year: AcademicYear | None,
) -> None:
    before = snapshot(row)
    apply_changes(row, changes)
    _check_order(row, same_day_allowed=isinstance(row, Closure))
    if year is not None:
        _check_inside(year, row.start_date, row.end_date)
    await flush_or_conflict(session, f"another {entity.replace('_', ' ')} has that name")
    await audit_write(session, principal, "update", entity, row.id, before=before, after=snapshot(row))


async def _delete(session: AsyncSession, principal: Principal, row: Any, entity: str) -> Response:
    before = snapshot(row)
    await session.delete(row)
    await session.flush()
    await audit_write(session, principal, "delete", entity, row.id, before=before)
    return Response(status_code=204)


@router.get("/academic-years", response_model=Page[AcademicYearOut], summary="List academic years")
async def list_years(session: SessionDep, page: PageDep, order: YearSort) -> dict[str, Any]:
    rows, total = await fetch_page(session, select(AcademicYear), page, order)
    return page_of(rows, total, page)


@router.get(
    "/academic-years/{year_id}", response_model=AcademicYearDetail, summary="A year with its semesters and closures"
)
async def get_year(session: SessionDep, year_id: uuid.UUID) -> dict[str, Any]:
    year = await _year(session, year_id)
    semesters = await session.scalars(
        select(Semester).where(col(Semester.academic_year_id) == year_id).order_by(col(Semester.start_date))
    )
    closures = await session.scalars(
        select(Closure).where(col(Closure.academic_year_id) == year_id).order_by(col(Closure.start_date))
    )
    return {**year.model_dump(), "semesters": semesters.all(), "closures": closures.all()}


@router.post("/academic-years", response_model=AcademicYearOut, status_code=201, summary="Add an academic year")
async def create_year(session: SessionDep, principal: AdminPrincipal, body: AcademicYearCreate) -> AcademicYear:
    year = AcademicYear(**body.model_dump())
    await _create(session, principal, year, "academic_year", f"the academic year {body.name}")
    return year


@router.patch("/academic-years/{year_id}", response_model=AcademicYearOut, summary="Change an academic year")
async def update_year(
    session: SessionDep, principal: AdminPrincipal, year_id: uuid.UUID, body: AcademicYearUpdate
) -> AcademicYear:
    year = await _year(session, year_id)
    await _update(session, principal, year, body.changes(), "academic_year", None)
    return year


@router.delete("/academic-years/{year_id}", status_code=204, summary="Delete a year with its semesters and closures")
async def delete_year(session: SessionDep, principal: AdminPrincipal, year_id: uuid.UUID) -> Response:
    return await _delete(session, principal, await _year(session, year_id), "academic_year")


@router.post(
    "/academic-years/{year_id}/semesters", response_model=SemesterOut, status_code=201, summary="Add a semester"
)
async def create_semester(
    session: SessionDep, principal: AdminPrincipal, year_id: uuid.UUID, body: SemesterCreate
) -> Semester:
    year = await _year(session, year_id)
    _check_inside(year, body.start_date, body.end_date)
    semester = Semester(academic_year_id=year.id, **body.model_dump())
    await _create(session, principal, semester, "semester", f"the semester {body.name}")
    return semester


async def _semester(session: AsyncSession, semester_id: uuid.UUID) -> Semester:
    semester: Semester = await get_one(session, select(Semester).where(col(Semester.id) == semester_id), "semester")
    return semester


@router.patch("/semesters/{semester_id}", response_model=SemesterOut, summary="Change a semester")
async def update_semester(
    session: SessionDep, principal: AdminPrincipal, semester_id: uuid.UUID, body: SemesterUpdate
) -> Semester:
    semester = await _semester(session, semester_id)
    year = await _year(session, semester.academic_year_id)
    await _update(session, principal, semester, body.changes(), "semester", year)
    return semester


@router.delete("/semesters/{semester_id}", status_code=204, summary="Delete a semester")
async def delete_semester(session: SessionDep, principal: AdminPrincipal, semester_id: uuid.UUID) -> Response:
    return await _delete(session, principal, await _semester(session, semester_id), "semester")


@router.get("/closures", response_model=Page[ClosureOut], summary="Days the school is closed")
async def list_closures(
    session: SessionDep,
    page: PageDep,
    order: ClosureSort,
    academic_year_id: uuid.UUID | None = None,
    on_or_after: date | None = None,
    on_or_before: date | None = None,
) -> dict[str, Any]:
    query = select(Closure)
    if academic_year_id is not None:
        query = query.where(col(Closure.academic_year_id) == academic_year_id)
    if on_or_after is not None:
        query = query.where(col(Closure.end_date) >= on_or_after)
    if on_or_before is not None:
        query = query.where(col(Closure.start_date) <= on_or_before)
    rows, total = await fetch_page(session, query, page, order)
    return page_of(rows, total, page)


@router.post(
    "/academic-years/{year_id}/closures", response_model=ClosureOut, status_code=201, summary="Close the school"
)
async def create_closure(
    session: SessionDep, principal: AdminPrincipal, year_id: uuid.UUID, body: ClosureCreate
) -> Closure:
    year = await _year(session, year_id)
    _check_inside(year, body.start_date, body.end_date)
    closure = Closure(academic_year_id=year.id, **body.model_dump())
    await _create(session, principal, closure, "closure", "the closure")
    return closure


async def _closure(session: AsyncSession, closure_id: uuid.UUID) -> Closure:
    closure: Closure = await get_one(session, select(Closure).where(col(Closure.id) == closure_id), "closure")
    return closure


@router.patch("/closures/{closure_id}", response_model=ClosureOut, summary="Change a closure")
async def update_closure(
    session: SessionDep, principal: AdminPrincipal, closure_id: uuid.UUID, body: ClosureUpdate
) -> Closure:
    closure = await _closure(session, closure_id)
    year = await _year(session, closure.academic_year_id)
    await _update(session, principal, closure, body.changes(), "closure", year)
    return closure


@router.delete("/closures/{closure_id}", status_code=204, summary="Reopen: delete a closure")
async def delete_closure(session: SessionDep, principal: AdminPrincipal, closure_id: uuid.UUID) -> Response:
    return await _delete(session, principal, await _closure(session, closure_id), "closure")
