"""Lessons: booking and moving them (``api/repositories/lessons.py`` places them), cancelling and marking them.

Admins manage every lesson. A teacher books and moves their own lessons within their weekly availability and
marks them completed, no-show or cancelled. A parent cancels their children's; cancelling up to the school's notice
earns a make-up credit, later forfeits the lesson (``api/services/makeups.py``). Another's lesson is not found
(the principal's scope).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio.client import Client

from api.errors import CedarError
from api.pagination import PageParams, SortOrder
from api.principal import Principal
from api.repositories import enrollments, students, teachers
from api.repositories import lessons as repository
from api.repositories.audit import audit_staff_reads, audit_write, snapshot
from api.repositories.base import apply_changes, invalid
from api.repositories.lessons import Slot, place_lesson
from api.schemas.lessons import LessonCreate, LessonReschedule
from api.services import makeups
from api.services.makeups import CancellationOutcome
from core.settings import Settings
from domain.attendance import Attendance
from models import Lesson, LessonKind, LessonStatus, Role


def _require_status(lesson: Lesson, *allowed: LessonStatus) -> None:
    if lesson.status not in allowed:
        raise CedarError(409, "invalid_status", f"the lesson is {lesson.status}; this needs {' or '.join(allowed)}")


def _require_not_demo(lesson: Lesson) -> None:
    if lesson.kind == LessonKind.demo:
        raise CedarError(409, "demo_lesson", "demo lessons are moved and cancelled through their enrollment")


def _teacher_rules(principal: Principal, slot: Slot) -> bool:
    """Whether the teacher's weekly availability binds this booking (422 when a teacher books the past).

    Teachers book and move lessons only ahead and within their week; admins may do either (recording a past
    lesson, making an exception to the week).
    """
    if principal.role != Role.teacher:
        return False
    if slot.starts_at <= datetime.now(UTC):
        raise invalid("starts_at", "must be in the future")
    return True


async def create(session: AsyncSession, settings: Settings, principal: Principal, body: LessonCreate) -> Lesson:
    teacher_id = body.teacher_id or principal.teacher_id
    if teacher_id is None:
        raise invalid("teacher_id", "required")
    teacher = await teachers.teacher(session, principal, teacher_id)
    if not teacher.is_active:
        raise invalid("teacher_id", "the teacher is not active")
    # A teacher books lessons for the students they already teach; an admin for anyone.
    student = await students.student(session, principal, body.student_id)
    if not student.is_active:
        raise invalid("student_id", "the student is not active")
    if body.enrollment_id is not None:
        enrollment = await enrollments.get(session, body.enrollment_id)
        if enrollment is None or enrollment.student_id != student.id:
            raise invalid("enrollment_id", "no such enrollment for this student")
    lesson = Lesson(
        kind=body.kind,
        teacher_id=teacher.id,
        student_id=student.id,
        enrollment_id=body.enrollment_id,
        starts_at=body.starts_at,
        ends_at=body.starts_at + timedelta(minutes=body.minutes),
        notes=body.notes,
    )
    slot = Slot.of(lesson)
    await place_lesson(session, lesson, slot, settings, within_availability=_teacher_rules(principal, slot))
    await audit_write(session, principal, "create", "lesson", lesson.id, after=snapshot(lesson))
    return lesson


async def reschedule(
    session: AsyncSession, settings: Settings, principal: Principal, lesson_id: uuid.UUID, body: LessonReschedule
) -> Lesson:
    lesson = await repository.lesson(session, principal, lesson_id)
    _require_not_demo(lesson)
    _require_status(lesson, LessonStatus.scheduled)
    before = snapshot(lesson)
    length = timedelta(minutes=body.minutes) if body.minutes else lesson.ends_at - lesson.starts_at
    slot = Slot(lesson.id, lesson.teacher_id, lesson.student_id, body.starts_at, body.starts_at + length)
    await place_lesson(session, lesson, slot, settings, within_availability=_teacher_rules(principal, slot))
    await audit_write(session, principal, "reschedule", "lesson", lesson.id, before=before, after=snapshot(lesson))
    return lesson


@dataclass(frozen=True)
class Cancelled:
    lesson: Lesson
    outcome: CancellationOutcome


async def cancel(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    lesson_id: uuid.UUID,
    reason: str,
) -> Cancelled:
    """Cancels the lesson with its outcome by the school's policy (``domain.makeups``): a family cancelling before
    the notice cutoff, a teacher or the school earns a make-up credit; a family's later cancellation forfeits the
    lesson. Commits, then starts the credit's workflow and the notices to the family and the teacher."""
    lesson = await repository.lesson(session, principal, lesson_id)
    _require_not_demo(lesson)
    _require_status(lesson, LessonStatus.scheduled, LessonStatus.suspended)
    decided = await makeups.decide_cancellation(session, settings, principal, lesson, reason)
    await _set_status(session, principal, lesson, LessonStatus.cancelled, reason, outcome=decided.outcome.value)
    # The credit's workflow and the notices start only once the rows they read are committed.
    await session.commit()
    await makeups.announce_cancellation(temporal, settings, lesson, decided)
    return Cancelled(lesson, decided)


async def _set_status(
    session: AsyncSession,
    principal: Principal,
    lesson: Lesson,
    status: LessonStatus,
    reason: str = "",
    outcome: str = "",
) -> Lesson:
    before = snapshot(lesson)
    lesson.status = status
    lesson.updated_at = datetime.now(UTC)
    await session.flush()
    after = {**snapshot(lesson), **({"reason": reason} if reason else {}), **({"outcome": outcome} if outcome else {})}
    await audit_write(session, principal, status.value, "lesson", lesson.id, before=before, after=after)
    return lesson


async def mark_held(session: AsyncSession, principal: Principal, lesson_id: uuid.UUID, status: LessonStatus) -> Lesson:
    """Completed or no-show: only from scheduled, and only once the lesson started."""
    lesson = await repository.lesson(session, principal, lesson_id)
    _require_status(lesson, LessonStatus.scheduled)
    if lesson.starts_at > datetime.now(UTC):
        raise CedarError(409, "not_started", "a lesson can be marked only once it has started")
    # The attendance each implies (domain/attendance.py): a completed lesson's student was present.
    lesson.attendance = Attendance.present if status == LessonStatus.completed else Attendance.absent
    return await _set_status(session, principal, lesson, status)


async def update(session: AsyncSession, principal: Principal, lesson_id: uuid.UUID, changes: dict[str, Any]) -> Lesson:
    lesson = await repository.lesson(session, principal, lesson_id)
    before = snapshot(lesson)
    apply_changes(lesson, changes)
    lesson.updated_at = datetime.now(UTC)
    await session.flush()
    await audit_write(session, principal, "update", "lesson", lesson.id, before=before, after=snapshot(lesson))
    return lesson


@dataclass(frozen=True)
class AgendaLine:
    lesson: Lesson
    student_first_name: str


AGENDA_LIMIT = 500


async def agenda(
    session: AsyncSession, principal: Principal, starts_from: datetime, starts_before: datetime
) -> list[AgendaLine]:
    """The lessons the principal may see (a teacher their own) that start in [starts_from, starts_before),
    earliest first, each with its student's first name (a staff read of the student, audited)."""
    order = SortOrder((col(Lesson.starts_at).asc(), col(Lesson.id).asc()))
    rows, _ = await repository.list_lessons(
        session, principal, PageParams(AGENDA_LIMIT, 0), order, None, None, None, None, starts_from, starts_before
    )
    names = await students.first_names(session, principal, {row.student_id for row in rows})
    await audit_staff_reads(session, principal, "student", names)
    return [AgendaLine(row, names.get(row.student_id, "")) for row in rows]
