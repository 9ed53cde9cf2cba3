"""``/api/v1/teachers``: teachers' records, weekly availability and time off; a teacher manages their own."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query, Response
from sqlalchemy import any_, delete, or_, select
from sqlmodel import col

from api.deps import IdentityDep, SessionDep
from api.pagination import NameSearch, Page, PageDep, SortOrder, fetch_page, page_of, sorting
from api.principal import AdminPrincipal, Principal, StaffPrincipal
from api.repositories import scopes
from api.repositories.accounts import deactivate_account, link_account, move_account_email, reactivate_account
from api.repositories.audit import audit_write, bind_request_id, snapshot
from api.repositories.base import (
    apply_changes,
    delete_or_conflict,
    flush_or_conflict,
    forbidden_fields,
    get_one,
)
from api.repositories.catalog import require_instruments
from api.repositories.lessons import first_overlapping_lesson, lesson_conflict
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
from models import Lesson, Role, Teacher, TeacherAvailability, TeacherTimeOff

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
    query = scopes.teachers(principal)
    if instrument is not None:
        query = query.where(any_(col(Teacher.instruments)) == instrument)
    if is_active is not None:
        query = query.where(col(Teacher.is_active) == is_active)
    if name:
        query = query.where(
            or_(
                col(Teacher.first_name).icontains(name, autoescape=True),
                col(Teacher.last_name).icontains(name, autoescape=True),
                col(Teacher.display_name).icontains(name, autoescape=True),
            )
        )
    rows, total = await fetch_page(session, query, page, order)
    return page_of(rows, total, page)


async def _teacher(session: SessionDep, principal: Principal, teacher_id: uuid.UUID) -> Teacher:
    teacher: Teacher = await get_one(
        session, scopes.teachers(principal).where(col(Teacher.id) == teacher_id), "teacher"
    )
    return teacher


@router.get("/{teacher_id}", response_model=TeacherOut, summary="One teacher's full record")
async def get_teacher(session: SessionDep, principal: StaffPrincipal, teacher_id: uuid.UUID) -> Teacher:
    return await _teacher(session, principal, teacher_id)


@router.post("", response_model=TeacherOut, status_code=201, summary="Add a teacher (admin)")
async def create_teacher(session: SessionDep, principal: AdminPrincipal, body: TeacherCreate) -> Teacher:
    await require_instruments(session, body.instruments, "instruments")
    email = body.email.lower()
    teacher = Teacher(
        **body.model_dump(exclude={"email"}), email=email, user_id=await link_account(session, email, Role.teacher)
    )
    session.add(teacher)
    await flush_or_conflict(session, f"a teacher with the email {email} already exists")
    await audit_write(session, principal, "create", "teacher", teacher.id, after=snapshot(teacher))
    return teacher


@router.patch("/{teacher_id}", response_model=TeacherOut, summary="Change a teacher's profile")
async def update_teacher(
    session: SessionDep, principal: StaffPrincipal, identity: IdentityDep, teacher_id: uuid.UUID, body: TeacherUpdate
) -> Teacher:
    changes = body.changes()
    teacher = await _teacher(session, principal, teacher_id)
    if principal.role == Role.teacher and not changes.keys() <= TeacherUpdate.teacher_editable:
        raise forbidden_fields(set(changes) - TeacherUpdate.teacher_editable)
    if "instruments" in changes:
        await require_instruments(session, changes["instruments"], "instruments")
    if "email" in changes:
        changes["email"] = changes["email"].lower()
        await move_account_email(session, identity, teacher.user_id, changes["email"])
    if changes.get("is_active") is False:
        await deactivate_account(session, identity, teacher.user_id)
    elif changes.get("is_active") is True:
        await reactivate_account(session, identity, teacher.user_id)
    before = snapshot(teacher)
    apply_changes(teacher, changes)
    await flush_or_conflict(session, "capacity cannot go below the teacher's active students; an email must be unused")
    await audit_write(session, principal, "update", "teacher", teacher.id, before=before, after=snapshot(teacher))
    return teacher


@router.delete(
    "/{teacher_id}", status_code=204, summary="Delete a teacher who never taught (else deactivate); ends their login"
)
async def delete_teacher(
    session: SessionDep, principal: AdminPrincipal, identity: IdentityDep, teacher_id: uuid.UUID
) -> Response:
    teacher = await _teacher(session, principal, teacher_id)
    before = snapshot(teacher)
    await delete_or_conflict(session, teacher, "the teacher has lessons or enrollments; set is_active to false instead")
    # The users row stays (audit rows name it as actor), deactivated: no sign-in, no refresh, no live token.
    await deactivate_account(session, identity, teacher.user_id)
    await audit_write(session, principal, "delete", "teacher", teacher_id, before=before)
    return Response(status_code=204)


async def _windows(session: SessionDep, teacher_id: uuid.UUID) -> list[TeacherAvailability]:
    query = (
        select(TeacherAvailability)
        .where(col(TeacherAvailability.teacher_id) == teacher_id)
        .order_by(col(TeacherAvailability.weekday), col(TeacherAvailability.start_time))
    )
    return list((await session.scalars(query)).all())


@router.get(
    "/{teacher_id}/availability",
    response_model=list[AvailabilityOut],
    summary="A teacher's weekly availability (school local time)",
)
async def get_availability(
    session: SessionDep, principal: StaffPrincipal, teacher_id: uuid.UUID
) -> list[TeacherAvailability]:
    await _teacher(session, principal, teacher_id)
    return await _windows(session, teacher_id)


@router.put(
    "/{teacher_id}/availability",
    response_model=list[AvailabilityOut],
    summary="Replace a teacher's weekly availability",
)
async def replace_availability(
    session: SessionDep, principal: StaffPrincipal, teacher_id: uuid.UUID, body: AvailabilityReplace
) -> list[TeacherAvailability]:
    await _teacher(session, principal, teacher_id)
    before = [snapshot(window) for window in await _windows(session, teacher_id)]
    await session.execute(delete(TeacherAvailability).where(col(TeacherAvailability.teacher_id) == teacher_id))
    session.add_all(TeacherAvailability(teacher_id=teacher_id, **window.model_dump()) for window in body.windows)
    await flush_or_conflict(session, "the availability could not be saved")
    after = await _windows(session, teacher_id)
    await audit_write(
        session,
        principal,
        "update",
        "teacher_availability",
        teacher_id,
        before={"windows": before},
        after={"windows": [snapshot(window) for window in after]},
    )
    return after


@router.get("/{teacher_id}/time-off", response_model=Page[TimeOffOut], summary="A teacher's time off")
async def list_time_off(
    session: SessionDep, principal: StaffPrincipal, teacher_id: uuid.UUID, page: PageDep, order: TimeOffSort
) -> dict[str, Any]:
    await _teacher(session, principal, teacher_id)
    query = select(TeacherTimeOff).where(col(TeacherTimeOff.teacher_id) == teacher_id)
    rows, total = await fetch_page(session, query, page, order)
    return page_of(rows, total, page)


@router.post("/{teacher_id}/time-off", response_model=TimeOffOut, status_code=201, summary="Book time off")
async def create_time_off(
    session: SessionDep, principal: StaffPrincipal, teacher_id: uuid.UUID, body: TimeOffCreate
) -> TeacherTimeOff:
    await _teacher(session, principal, teacher_id)
    # Lessons in the way are moved or cancelled first, so none is silently left without its teacher.
    lesson = await first_overlapping_lesson(session, col(Lesson.teacher_id) == teacher_id, body.starts_at, body.ends_at)
    if lesson is not None:
        raise lesson_conflict(lesson, "the teacher")
    time_off = TeacherTimeOff(teacher_id=teacher_id, **body.model_dump())
    session.add(time_off)
    await session.flush()
    await audit_write(session, principal, "create", "teacher_time_off", time_off.id, after=snapshot(time_off))
    return time_off


@router.delete("/{teacher_id}/time-off/{time_off_id}", status_code=204, summary="Cancel time off")
async def delete_time_off(
    session: SessionDep, principal: StaffPrincipal, teacher_id: uuid.UUID, time_off_id: uuid.UUID
) -> Response:
    await _teacher(session, principal, teacher_id)
    time_off = await get_one(
        session,
        select(TeacherTimeOff).where(
            col(TeacherTimeOff.id) == time_off_id, col(TeacherTimeOff.teacher_id) == teacher_id
        ),
        "time off",
    )
    before = snapshot(time_off)
    await session.delete(time_off)
    await session.flush()
    await audit_write(session, principal, "delete", "teacher_time_off", time_off_id, before=before)
    return Response(status_code=204)
