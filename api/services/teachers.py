"""Teachers: their records and login accounts, weekly availability and time off; a teacher manages their own
(the principal's scope: another teacher is not found) and changes only the fields a teacher may."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.pagination import PageParams, SortOrder
from api.principal import Principal
from api.repositories import teachers as repository
from api.repositories.accounts import deactivate_account, link_account, move_account_email, reactivate_account
from api.repositories.audit import audit_write, snapshot
from api.repositories.base import (
    add_or_conflict,
    apply_changes,
    delete_now,
    delete_or_conflict,
    flush_or_conflict,
    forbidden_fields,
)
from api.repositories.catalog import require_instruments
from api.repositories.lessons import first_overlapping_lesson, lesson_conflict
from api.schemas.school import AvailabilityReplace, TeacherCreate, TeacherUpdate, TimeOffCreate
from core.identity import IdentityService
from models import Lesson, Role, Teacher, TeacherAvailability, TeacherTimeOff


async def create(session: AsyncSession, principal: Principal, body: TeacherCreate) -> Teacher:
    """The teacher and their login account (a new one, or the one of a teacher removed earlier)."""
    await require_instruments(session, body.instruments, "instruments")
    email = body.email.lower()
    teacher = Teacher(
        **body.model_dump(exclude={"email"}), email=email, user_id=await link_account(session, email, Role.teacher)
    )
    await add_or_conflict(session, teacher, f"a teacher with the email {email} already exists")
    await audit_write(session, principal, "create", "teacher", teacher.id, after=snapshot(teacher))
    return teacher


async def update(
    session: AsyncSession,
    principal: Principal,
    identity: IdentityService,
    teacher_id: uuid.UUID,
    changes: dict[str, Any],
) -> Teacher:
    """The login account follows: a new email moves it, deactivation ends it, reactivation restores it."""
    teacher = await repository.teacher(session, principal, teacher_id)
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


async def delete(session: AsyncSession, principal: Principal, identity: IdentityService, teacher_id: uuid.UUID) -> None:
    teacher = await repository.teacher(session, principal, teacher_id)
    before = snapshot(teacher)
    await delete_or_conflict(session, teacher, "the teacher has lessons or enrollments; set is_active to false instead")
    # The users row stays (audit rows name it as actor), deactivated: no sign-in, no refresh, no live token.
    await deactivate_account(session, identity, teacher.user_id)
    await audit_write(session, principal, "delete", "teacher", teacher_id, before=before)


async def availability(session: AsyncSession, principal: Principal, teacher_id: uuid.UUID) -> list[TeacherAvailability]:
    await repository.teacher(session, principal, teacher_id)
    return await repository.windows(session, teacher_id)


async def replace_availability(
    session: AsyncSession, principal: Principal, teacher_id: uuid.UUID, body: AvailabilityReplace
) -> list[TeacherAvailability]:
    await repository.teacher(session, principal, teacher_id)
    before = [snapshot(window) for window in await repository.windows(session, teacher_id)]
    await repository.replace_windows(
        session,
        teacher_id,
        (TeacherAvailability(teacher_id=teacher_id, **window.model_dump()) for window in body.windows),
    )
    await flush_or_conflict(session, "the availability could not be saved")
    after = await repository.windows(session, teacher_id)
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


async def time_off_page(
    session: AsyncSession, principal: Principal, teacher_id: uuid.UUID, page: PageParams, order: SortOrder
) -> tuple[Sequence[Any], int]:
    await repository.teacher(session, principal, teacher_id)
    return await repository.list_time_off(session, teacher_id, page, order)


async def create_time_off(
    session: AsyncSession, principal: Principal, teacher_id: uuid.UUID, body: TimeOffCreate
) -> TeacherTimeOff:
    await repository.teacher(session, principal, teacher_id)
    # Lessons in the way are moved or cancelled first, so none is silently left without its teacher.
    lesson = await first_overlapping_lesson(session, col(Lesson.teacher_id) == teacher_id, body.starts_at, body.ends_at)
    if lesson is not None:
        raise lesson_conflict(lesson, "the teacher")
    time_off = TeacherTimeOff(teacher_id=teacher_id, **body.model_dump())
    session.add(time_off)
    await session.flush()
    await audit_write(session, principal, "create", "teacher_time_off", time_off.id, after=snapshot(time_off))
    return time_off


async def delete_time_off(
    session: AsyncSession, principal: Principal, teacher_id: uuid.UUID, time_off_id: uuid.UUID
) -> None:
    await repository.teacher(session, principal, teacher_id)
    time_off = await repository.time_off(session, teacher_id, time_off_id)
    before = snapshot(time_off)
    await delete_now(session, time_off)
    await audit_write(session, principal, "delete", "teacher_time_off", time_off_id, before=before)
