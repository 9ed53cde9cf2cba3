"""Teacher changes (docs/lessons.md, "Closures after booking and teacher changes"): a substitute for a lesson or a
range of days, undone by deleting it, and a student's transfer to another teacher from a date.

Each change is one transaction under the same schedule locks as any lesson booking, and the teachers' exclusion
constraint decides every conflict: a substitution is all or nothing (a 409 lists each lesson the substitute is
not free for, and nothing changes); a transfer reserves the new teacher's place with the enrollment's
conditional update, gives the old one back and rebooks each lesson ahead, or answers 409 with nothing changed.
Only after the commit does the change's workflow tell the family and the teachers.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.errors import CedarError
from api.principal import Principal
from api.repositories import teacher_changes as repository
from api.repositories import teachers
from api.repositories.audit import audit_write, snapshot
from api.repositories.base import invalid
from api.repositories.lessons import first_overlapping_lesson
from api.schemas.teacher_changes import SubstitutionCreate, TransferCreate
from api.temporal_calls import bounded
from core.contracts.teacher_changes import (
    SUBSTITUTION_WORKFLOW,
    TEACHER_TRANSFER_WORKFLOW,
    ChangedLesson,
    SubstitutionNotice,
    TransferNotice,
)
from core.db import lock_keys, schedule_lock_keys
from core.schedule import rebook, try_place
from core.settings import Settings
from core.temporal import substitution_workflow_id, teacher_transfer_workflow_id
from domain.calendar import local_to_utc
from domain.enrollment_rules import EnrollmentState
from models import Lesson, LessonKind, LessonStatus, Substitution, Teacher


async def _start(
    temporal: Client, settings: Settings, workflow: str, request: BaseModel, workflow_id: str, summary: str
) -> None:
    """``summary``: the Temporal UI's line for the workflow (kinds, dates and counts only, never personal data)."""
    async with bounded(settings.temporal_update_timeout, "the teacher change's notices"):
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await temporal.start_workflow(
                workflow,
                request,
                id=workflow_id,
                task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=summary,
                rpc_timeout=settings.temporal_update_timeout,
            )


def _day_start(day: date, settings: Settings) -> datetime:
    return local_to_utc(day, time(0), settings.timezone)


async def _lock(session: AsyncSession, lessons: Sequence[Lesson], *teacher_ids: uuid.UUID) -> None:
    keys = [key for lesson in lessons for t in teacher_ids for key in schedule_lock_keys(t, lesson.student_id)]
    await lock_keys(session, *keys)


async def _reload(session: AsyncSession, ids: Sequence[uuid.UUID], *, lock: bool = False) -> list[Lesson]:
    """The lessons as the transaction now has them (the changes were made by statements, not the objects);
    ``lock``: their rows locked too, once the schedule locks are held."""
    query = select(Lesson).where(col(Lesson.id).in_(list(ids))).order_by(col(Lesson.starts_at))
    if lock:
        query = query.with_for_update()
    return list(await session.scalars(query.execution_options(populate_existing=True)))


async def _clash(session: AsyncSession, lesson: Lesson, teacher_id: uuid.UUID) -> str:
    other = await first_overlapping_lesson(
        session, col(Lesson.teacher_id) == teacher_id, lesson.starts_at, lesson.ends_at, lesson.id
    )
    if other is None:
        return "the teacher is not free then"
    return f"the teacher has a lesson from {other.starts_at.isoformat()} to {other.ends_at.isoformat()}"


async def _parents(session: AsyncSession, lessons: Sequence[Lesson]) -> dict[uuid.UUID, uuid.UUID]:
    return await repository.parents_of(session, {lesson.student_id for lesson in lessons})


# --- substitutions -------------------------------------------------------------------------------------------


async def _lessons_to_substitute(
    session: AsyncSession, settings: Settings, regular: Teacher, body: SubstitutionCreate
) -> tuple[list[Lesson], date, date]:
    if body.lesson_id is not None:
        lesson = await session.get(Lesson, body.lesson_id)
        if lesson is None or lesson.teacher_id != regular.id:
            raise invalid("lesson_id", "no such lesson of this teacher")
        if lesson.status != LessonStatus.scheduled or lesson.kind == LessonKind.demo:
            raise invalid("lesson_id", f"the lesson is {lesson.status} {lesson.kind}; only scheduled lessons move")
        day = lesson.starts_at.astimezone(settings.timezone).date()
        return [lesson], day, day
    assert body.from_date is not None
    assert body.to_date is not None
    start, end = _day_start(body.from_date, settings), _day_start(body.to_date + timedelta(days=1), settings)
    lessons = list(await repository.scheduled_lessons(session, regular.id, start, end))
    if not lessons:
        raise invalid("from_date", "the teacher has no scheduled lessons in that range")
    return lessons, body.from_date, body.to_date


async def substitute(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    teacher_id: uuid.UUID,
    body: SubstitutionCreate,
) -> tuple[Substitution, list[Lesson]]:
    """Gives the regular teacher's lessons (one, or those in the range) to the substitute, all or none."""
    regular = await teachers.teacher(session, principal, teacher_id)
    substitute_teacher = await session.get(Teacher, body.substitute_teacher_id)
    if substitute_teacher is None or not substitute_teacher.is_active:
        raise invalid("substitute_teacher_id", "no such active teacher")
    if substitute_teacher.id == regular.id:
        raise invalid("substitute_teacher_id", "a teacher cannot substitute for themself")
    lessons, first_day, last_day = await _lessons_to_substitute(session, settings, regular, body)
    await _lock(session, lessons, regular.id, substitute_teacher.id)
    locked = await _reload(session, [lesson.id for lesson in lessons], lock=True)
    lessons = [
        lesson for lesson in locked if lesson.status == LessonStatus.scheduled and lesson.teacher_id == regular.id
    ]
    for lesson in lessons:
        instrument = await repository.instrument_of(session, lesson)
        if instrument not in substitute_teacher.instruments:
            raise invalid("substitute_teacher_id", f"the substitute does not teach {instrument}")
    substitution = Substitution(
        regular_teacher_id=regular.id,
        substitute_teacher_id=substitute_teacher.id,
        lesson_id=body.lesson_id,
        from_date=first_day,
        to_date=last_day,
    )
    session.add(substitution)
    await session.flush()
    conflicts: dict[str, str] = {}
    for lesson in lessons:
        if await try_place(session, lesson.id, substitute_teacher.id, lesson.starts_at, lesson.ends_at):
            await repository.mark_substituted(session, lesson.id, regular.id, substitution.id)
        else:
            conflicts[f"lesson {lesson.id}"] = await _clash(session, lesson, substitute_teacher.id)
    if conflicts:
        # All or nothing: the request's transaction rolls back, and the office sees every lesson in the way.
        raise CedarError(
            409, "substitute_not_free", "the substitute is not free for every lesson; nothing changed", conflicts
        )
    changed = await _reload(session, [lesson.id for lesson in lessons])
    await audit_write(
        session,
        principal,
        "substitute",
        "substitution",
        substitution.id,
        after={**snapshot(substitution), "lesson_ids": [str(lesson.id) for lesson in changed]},
    )
    parents = await _parents(session, changed)
    await session.commit()
    notice = SubstitutionNotice(
        substitution_id=substitution.id,
        regular_teacher_id=regular.id,
        substitute_teacher_id=substitute_teacher.id,
        lessons=[
            ChangedLesson(lesson_id=lesson.id, parent_id=parents[lesson.student_id], starts_at=lesson.starts_at)
            for lesson in changed
        ],
    )
    summary = f"Substitution: {len(changed)} lessons, notices to families"
    await _start(temporal, settings, SUBSTITUTION_WORKFLOW, notice, substitution_workflow_id(substitution.id), summary)
    return substitution, changed


async def undo_substitution(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    teacher_id: uuid.UUID,
    substitution_id: uuid.UUID,
) -> tuple[Substitution, list[Lesson]]:
    """Gives the substitution's lessons still ahead (scheduled) back to the regular teacher, all or none; lessons
    already taught stay the substitute's (they taught them, and are paid for them)."""
    regular = await teachers.teacher(session, principal, teacher_id)
    substitution = await repository.substitution(session, substitution_id, regular.id)
    if substitution is None:
        raise CedarError(404, "not_found", "substitution not found")
    if substitution.undone_at is not None:
        raise CedarError(409, "already_undone", "the substitution was already undone")
    lessons = list(await repository.substituted_lessons(session, substitution.id))
    await _lock(session, lessons, regular.id, substitution.substitute_teacher_id)
    lessons = [
        lesson
        for lesson in await _reload(session, [lesson.id for lesson in lessons], lock=True)
        if lesson.status == LessonStatus.scheduled and lesson.substitution_id == substitution.id
    ]
    conflicts: dict[str, str] = {}
    for lesson in lessons:
        if await try_place(session, lesson.id, regular.id, lesson.starts_at, lesson.ends_at):
            await repository.mark_substituted(session, lesson.id, None, None)
        else:
            conflicts[f"lesson {lesson.id}"] = await _clash(session, lesson, regular.id)
    if conflicts:
        raise CedarError(
            409,
            "teacher_not_free",
            "the regular teacher is no longer free for every lesson; nothing changed",
            conflicts,
        )
    before = snapshot(substitution)
    substitution.undone_at = datetime.now(UTC)
    await session.flush()
    changed = await _reload(session, [lesson.id for lesson in lessons])
    after = {**snapshot(substitution), "lesson_ids": [str(lesson.id) for lesson in changed]}
    await audit_write(
        session, principal, "substitute_undo", "substitution", substitution.id, before=before, after=after
    )
    parents = await _parents(session, changed)
    await session.commit()
    notice = SubstitutionNotice(
        substitution_id=substitution.id,
        regular_teacher_id=regular.id,
        substitute_teacher_id=substitution.substitute_teacher_id,
        undone=True,
        lessons=[
            ChangedLesson(lesson_id=lesson.id, parent_id=parents[lesson.student_id], starts_at=lesson.starts_at)
            for lesson in changed
        ],
    )
    workflow_id = substitution_workflow_id(substitution.id, undone=True)
    summary = f"Substitution undone: {len(changed)} lessons, notices to families"
    await _start(temporal, settings, SUBSTITUTION_WORKFLOW, notice, workflow_id, summary)
    return substitution, changed


# --- transfers -----------------------------------------------------------------------------------------------


async def transfer(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    enrollment_id: uuid.UUID,
    body: TransferCreate,
) -> dict[str, Any]:
    """From ``body.from_date`` the student learns with ``body.teacher_id``: the new teacher's place reserved, the
    old one's released, the enrollment's teacher changed and every lesson ahead rebooked with the new teacher (its
    own time when free, else the nearest free slot), in one transaction; a 409 when the teacher is full, does
    not teach the instrument, or has no slot for a lesson, with nothing changed."""
    enrollment = await repository.locked_enrollment(session, enrollment_id)
    if enrollment is None:
        raise CedarError(404, "not_found", "enrollment not found")
    old_teacher_id, student_id = enrollment.teacher_id, enrollment.student_id
    if enrollment.state != EnrollmentState.ACTIVE or old_teacher_id is None or student_id is None:
        raise CedarError(409, "not_active", f"the enrollment is {enrollment.state}; only an active one is transferred")
    if body.teacher_id == old_teacher_id:
        raise invalid("teacher_id", "already the student's teacher")
    new_teacher = await session.get(Teacher, body.teacher_id)
    if new_teacher is None:
        raise invalid("teacher_id", "no such teacher")
    now = datetime.now(UTC)
    if body.from_date < now.astimezone(settings.timezone).date():
        raise invalid("from_date", "must not be in the past")
    await lock_keys(
        session, *schedule_lock_keys(old_teacher_id, student_id), *schedule_lock_keys(new_teacher.id, student_id)
    )
    if not await repository.reserve_place(session, new_teacher.id, enrollment.instrument):
        if not new_teacher.is_active or enrollment.instrument not in new_teacher.instruments:
            reason = f"does not teach {enrollment.instrument}"
        else:
            reason = "has no free place"
        raise CedarError(409, "teacher_unavailable", f"the teacher {reason}", {"teacher_id": reason})
    await repository.release_place(session, old_teacher_id)
    enrollment.teacher_id, enrollment.updated_at = new_teacher.id, now
    await session.flush()
    start = max(_day_start(body.from_date, settings), now)
    lessons = list(await repository.enrollment_lessons(session, enrollment.id, start))
    previous = {lesson.id: lesson.starts_at for lesson in lessons}
    for lesson in lessons:
        when = lesson.starts_at
        if await rebook(session, lesson, new_teacher.id, start, settings.timezone) is None:
            raise CedarError(
                409,
                "no_free_slot",
                f"the teacher has no free slot for the lesson of {when.isoformat()} in its semester; nothing changed",
                {"teacher_id": f"no free slot for the lesson {lesson.id}"},
            )
        await repository.mark_substituted(session, lesson.id, None, None)
    changed = await _reload(session, list(previous))
    moves: list[dict[str, Any]] = [
        {
            "id": lesson.id,
            "previous_starts_at": previous[lesson.id],
            "starts_at": lesson.starts_at,
            "ends_at": lesson.ends_at,
        }
        for lesson in changed
    ]
    await audit_write(
        session,
        principal,
        "teacher_transfer",
        "enrollment",
        enrollment.id,
        before={"teacher_id": str(old_teacher_id)},
        after={
            "teacher_id": str(new_teacher.id),
            "from_date": body.from_date.isoformat(),
            "lessons": [
                {"id": str(m["id"]), "from": m["previous_starts_at"].isoformat(), "to": m["starts_at"].isoformat()}
                for m in moves
            ],
        },
    )
    parent_id = enrollment.parent_id
    assert parent_id is not None
    await session.commit()
    notice = TransferNotice(
        enrollment_id=enrollment.id,
        from_date=body.from_date,
        parent_id=parent_id,
        old_teacher_id=old_teacher_id,
        new_teacher_id=new_teacher.id,
        lessons=[
            ChangedLesson(
                lesson_id=m["id"], parent_id=parent_id, starts_at=m["previous_starts_at"], new_starts_at=m["starts_at"]
            )
            for m in moves
        ],
    )
    workflow_id = teacher_transfer_workflow_id(enrollment.id, body.from_date)
    summary = f"Teacher transfer from {body.from_date}: {len(moves)} lessons moved"
    await _start(temporal, settings, TEACHER_TRANSFER_WORKFLOW, notice, workflow_id, summary)
    return {
        "enrollment_id": enrollment.id,
        "previous_teacher_id": old_teacher_id,
        "teacher_id": new_teacher.id,
        "from_date": body.from_date,
        "lessons": moves,
    }
