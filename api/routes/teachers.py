"""``/api/v1/teachers``: teachers' records, weekly availability and time off; a teacher manages their own."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query, Response

from api.deps import IdentityDep, SessionDep
from api.pagination import NameSearch, Page, PageDep, SortOrder, page_of, sorting
from api.principal import AdminPrincipal, StaffPrincipal
from api.repositories import teachers as repository
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.school import (
    AvailabilityOut,
    AvailabilityReplace,
    TeacherCreate,
    TeacherOut,
    TeacherUpdate,
    TimeOffCreate,
    TimeOffOut,
)
from api.services import teachers as service
from models import Teacher, TeacherAvailability, TeacherTimeOff

router = IndexedRouter(
    prefix="/api/v1/teachers",
    tags=["teachers"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 409, 422),
)

TeacherSort = Annotated[
    SortOrder,
    Depends(
        sorting(
            {
                "last_name": Teacher.last_name,
                "display_name": Teacher.display_name,
                "active_students": Teacher.active_students,
                "created_at": Teacher.created_at,
            },
            "last_name",
        )
    ),
]
TimeOffSort = Annotated[SortOrder, Depends(sorting({"starts_at": TeacherTimeOff.starts_at}, "starts_at"))]


@router.get("", response_model=Page[TeacherOut], summary="List teachers (admin)")
async def list_teachers(
    session: SessionDep,
    principal: AdminPrincipal,
    page: PageDep,
    order: TeacherSort,
    instrument: Annotated[str | None, Query(max_length=32)] = None,
    is_active: bool | None = None,
    name: NameSearch = None,
) -> dict[str, Any]:
    rows, total = await repository.list_teachers(session, principal, page, order, instrument, is_active, name)
    return page_of(rows, total, page)


@router.get("/{teacher_id}", response_model=TeacherOut, summary="One teacher's full record")
async def get_teacher(session: SessionDep, principal: StaffPrincipal, teacher_id: uuid.UUID) -> Teacher:
    return await repository.teacher(session, principal, teacher_id)


@router.post("", response_model=TeacherOut, status_code=201, summary="Add a teacher (admin)")
async def create_teacher(session: SessionDep, principal: AdminPrincipal, body: TeacherCreate) -> Teacher:
    return await service.create(session, principal, body)


@router.patch("/{teacher_id}", response_model=TeacherOut, summary="Change a teacher's profile")
async def update_teacher(
    session: SessionDep, principal: StaffPrincipal, identity: IdentityDep, teacher_id: uuid.UUID, body: TeacherUpdate
) -> Teacher:
    return await service.update(session, principal, identity, teacher_id, body.changes())


@router.delete(
    "/{teacher_id}", status_code=204, summary="Delete a teacher who never taught (else deactivate); ends their login"
)
async def delete_teacher(
    session: SessionDep, principal: AdminPrincipal, identity: IdentityDep, teacher_id: uuid.UUID
) -> Response:
    await service.delete(session, principal, identity, teacher_id)
    return Response(status_code=204)


@router.get(
    "/{teacher_id}/availability",
    response_model=list[AvailabilityOut],
    summary="A teacher's weekly availability (school local time)",
)
async def get_availability(
    session: SessionDep, principal: StaffPrincipal, teacher_id: uuid.UUID
) -> list[TeacherAvailability]:
    return await service.availability(session, principal, teacher_id)


@router.put(
    "/{teacher_id}/availability",
    response_model=list[AvailabilityOut],
    summary="Replace a teacher's weekly availability",
)
async def replace_availability(
    session: SessionDep, principal: StaffPrincipal, teacher_id: uuid.UUID, body: AvailabilityReplace
) -> list[TeacherAvailability]:
    return await service.replace_availability(session, principal, teacher_id, body)


@router.get("/{teacher_id}/time-off", response_model=Page[TimeOffOut], summary="A teacher's time off")
async def list_time_off(
    session: SessionDep, principal: StaffPrincipal, teacher_id: uuid.UUID, page: PageDep, order: TimeOffSort
) -> dict[str, Any]:
    rows, total = await service.time_off_page(session, principal, teacher_id, page, order)
    return page_of(rows, total, page)


@router.post("/{teacher_id}/time-off", response_model=TimeOffOut, status_code=201, summary="Book time off")
async def create_time_off(
    session: SessionDep, principal: StaffPrincipal, teacher_id: uuid.UUID, body: TimeOffCreate
) -> TeacherTimeOff:
    return await service.create_time_off(session, principal, teacher_id, body)


@router.delete("/{teacher_id}/time-off/{time_off_id}", status_code=204, summary="Cancel time off")
async def delete_time_off(
    session: SessionDep, principal: StaffPrincipal, teacher_id: uuid.UUID, time_off_id: uuid.UUID
) -> Response:
    await service.delete_time_off(session, principal, teacher_id, time_off_id)
    return Response(status_code=204)
