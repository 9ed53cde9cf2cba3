"""``/api/v1/students``: the school's students; parents see their children, teachers the students they teach."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query, Response

from api.deps import SessionDep, SettingsDep
from api.pagination import NameSearch, Page, PageDep, SortOrder, page_of, sorting
from api.principal import AdminPrincipal, CurrentPrincipal, Principal, require_roles
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.school import StudentCreate, StudentOut, StudentUpdate
from api.services import students as service
from models import Role, Student

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
    rows, total = await service.page(session, principal, page, order, parent_id, instrument, is_active, name)
    return page_of(rows, total, page)


@router.get("/{student_id}", response_model=StudentOut, summary="One student")
async def get_student(session: SessionDep, principal: CurrentPrincipal, student_id: uuid.UUID) -> Student:
    return await service.get(session, principal, student_id)


@router.post("", response_model=StudentOut, status_code=201, summary="Add a student to a family")
async def create_student(
    session: SessionDep, settings: SettingsDep, principal: AdminPrincipal, body: StudentCreate
) -> Student:
    return await service.create(session, settings, principal, body)


@router.patch("/{student_id}", response_model=StudentOut, summary="Change a student's details")
async def update_student(
    session: SessionDep,
    settings: SettingsDep,
    principal: FamilyPrincipal,
    student_id: uuid.UUID,
    body: StudentUpdate,
) -> Student:
    return await service.update(session, settings, principal, student_id, body.changes())


@router.delete("/{student_id}", status_code=204, summary="Delete a student who has no lessons or enrollments")
async def delete_student(session: SessionDep, principal: AdminPrincipal, student_id: uuid.UUID) -> Response:
    await service.delete(session, principal, student_id)
    return Response(status_code=204)
