"""Students: read as the principal's scope allows (staff reads audited), added by admins, renamed by their
family (a parent changes only what a parent may), removed while they have no lessons or enrollments."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.pagination import PageParams, SortOrder
from api.principal import Principal
from api.repositories import students as repository
from api.repositories.audit import audit_staff_reads, audit_write, snapshot
from api.repositories.base import (
    add_or_conflict,
    apply_changes,
    delete_or_conflict,
    flush_or_conflict,
    forbidden_fields,
    invalid,
)
from api.repositories.catalog import require_instruments
from api.schemas.school import StudentCreate, StudentUpdate
from core.settings import Settings
from domain.enrollment_rules import check_age
from models import Role, Student


def _check_age(settings: Settings, changes: dict[str, Any]) -> None:
    if "date_of_birth" in changes:
        today = datetime.now(settings.timezone).date()
        problem = check_age(changes["date_of_birth"], today, settings.student_min_age, settings.student_max_age)
        if problem:
            raise invalid("date_of_birth", problem)


async def page(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    order: SortOrder,
    parent_id: uuid.UUID | None,
    instrument: str | None,
    is_active: bool | None,
    name: str | None,
) -> tuple[Sequence[Any], int]:
    rows, total = await repository.list_students(
        session, principal, page, order, parent_id, instrument, is_active, name
    )
    await audit_staff_reads(session, principal, "student", (row.id for row in rows))
    return rows, total


async def get(session: AsyncSession, principal: Principal, student_id: uuid.UUID) -> Student:
    student = await repository.student(session, principal, student_id)
    await audit_staff_reads(session, principal, "student", [student.id])
    return student


async def create(session: AsyncSession, settings: Settings, principal: Principal, body: StudentCreate) -> Student:
    if not await repository.parent_exists(session, body.parent_id):
        raise invalid("parent_id", "no such parent")
    if body.instrument is not None:
        await require_instruments(session, [body.instrument], "instrument")
    _check_age(settings, body.model_dump())
    student = Student(**body.model_dump())
    await add_or_conflict(session, student, "the student could not be created")
    await audit_write(session, principal, "create", "student", student.id, after=snapshot(student))
    return student


async def update(
    session: AsyncSession, settings: Settings, principal: Principal, student_id: uuid.UUID, changes: dict[str, Any]
) -> Student:
    student = await repository.student(session, principal, student_id)
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


async def delete(session: AsyncSession, principal: Principal, student_id: uuid.UUID) -> None:
    student = await repository.student(session, principal, student_id)
    before = snapshot(student)
    await delete_or_conflict(session, student, "the student has lessons or enrollments; set is_active to false instead")
    await audit_write(session, principal, "delete", "student", student_id, before=before)
