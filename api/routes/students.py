"""``/api/v1/students``: the school's students; parents see their children, teachers the students they teach."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Response
from sqlalchemy import or_
from sqlmodel import col

from api.deps import SessionDep, SettingsDep
from api.pagination import NameSearch, Page, PageDep, SortOrder, fetch_page, page_of, sorting
from api.principal import AdminPrincipal, CurrentPrincipal, Principal, require_roles
from api.repositories import scopes
from api.repositories.audit import audit_staff_reads, audit_write, bind_request_id, snapshot
from api.repositories.base import (
    apply_changes,
    delete_or_conflict,
    flush_or_conflict,
    forbidden_fields,
    get_one,
    invalid,
)
from api.repositories.catalog import require_instruments
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.school import StudentCreate, StudentOut, StudentUpdate
from core.settings import Settings
from domain.enrollment_rules import check_age
from models import Parent, Role, Student

router = IndexedRouter(
    prefix="/api/v1/students",
    tags=["students"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 409, 422),
)

StudentSort = Annotated[
    SortOrder,
    Depends(
        sorting(
            {
                "last_name": Student.last_name,
                "first_name": Student.first_name,
                "date_of_birth": Student.date_of_birth,
                "created_at": Student.created_at,
            },
            "last_name",
        )
    ),
]
FamilyPrincipal = Annotated[Principal, Depends(require_roles(Role.admin, Role.parent))]


def _check_age(settings: Settings, changes: dict[str, Any]) -> None:
    if "date_of_birth" in changes:
        today = datetime.now(settings.timezone).date()
        problem = check_age(changes["date_of_birth"], today, settings.student_min_age, settings.student_max_age)
        if problem:
            raise invalid("date_of_birth", problem)


@router.get("", response_model=Page[StudentOut], summary="List the students the caller may see")
async def list_students(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    order: StudentSort,
    parent_id: uuid.UUID | None = None,
    instrument: Annotated[str | None, Query(max_length=32)] = None,
    is_active: bool | None = None,
    name: NameSearch = None,
) -> dict[str, Any]:
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
    rows, total = await fetch_page(session, query, page, order)
    await audit_staff_reads(session, principal, "student", (row.id for row in rows))
    return page_of(rows, total, page)


async def _student(session: SessionDep, principal: Principal, student_id: uuid.UUID) -> Student:
    student: Student = await get_one(
        session, scopes.students(principal).where(col(Student.id) == student_id), "student"
    )
    return student


@router.get("/{student_id}", response_model=StudentOut, summary="One student")
async def get_student(session: SessionDep, principal: CurrentPrincipal, student_id: uuid.UUID) -> Student:
    student = await _student(session, principal, student_id)
    await audit_staff_reads(session, principal, "student", [student.id])
    return student


@router.post("", response_model=StudentOut, status_code=201, summary="Add a student to a family")
async def create_student(
    session: SessionDep, settings: SettingsDep, principal: AdminPrincipal, body: StudentCreate
) -> Student:
    if await session.get(Parent, body.parent_id) is None:
        raise invalid("parent_id", "no such parent")
    if body.instrument is not None:
        await require_instruments(session, [body.instrument], "instrument")
    _check_age(settings, body.model_dump())
    student = Student(**body.model_dump())
    session.add(student)
    await flush_or_conflict(session, "the student could not be created")
    await audit_write(session, principal, "create", "student", student.id, after=snapshot(student))
    return student


@router.patch("/{student_id}", response_model=StudentOut, summary="Change a student's details")
async def update_student(
    session: SessionDep,
    settings: SettingsDep,
    principal: FamilyPrincipal,
    student_id: uuid.UUID,
    body: StudentUpdate,
) -> Student:
    changes = body.changes()
    student = await _student(session, principal, student_id)
    if principal.role == Role.parent and not changes.keys() <= StudentUpdate.parent_editable:
        raise forbidden_fields(set(changes) - StudentUpdate.parent_editable)
    if changes.get("instrument") is not None:
        await require_instruments(session, [changes["instrument"]], "instrument")
    _check_age(settings, changes)
    before = snapshot(student)
    apply_changes(student, changes)
    await flush_or_conflict(session, "the student could not be updated")
    await audit_write(session, principal, "update", "student", student.id, before=before, after=snapshot(student))
    return student


@router.delete("/{student_id}", status_code=204, summary="Delete a student who has no lessons or enrollments")
async def delete_student(session: SessionDep, principal: AdminPrincipal, student_id: uuid.UUID) -> Response:
    student = await _student(session, principal, student_id)
    before = snapshot(student)
    await delete_or_conflict(session, student, "the student has lessons or enrollments; set is_active to false instead")
    await audit_write(session, principal, "delete", "student", student_id, before=before)
    return Response(status_code=204)
