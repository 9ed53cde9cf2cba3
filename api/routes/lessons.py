"""``/api/v1/lessons``: booking, moving, cancelling and marking lessons.

Admins manage every lesson. A teacher books and moves their own lessons within their weekly availability and
marks them completed, no-show or cancelled. A parent sees their children's lessons and cancels one up to
``settings.parent_cancel_notice`` before it starts.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import Depends
from pydantic import AwareDatetime
from sqlmodel import col

from api.deps import SessionDep, SettingsDep
from api.errors import CedarError
from api.pagination import Page, PageDep, SortOrder, fetch_page, page_of, sorting
from api.principal import CurrentPrincipal, Principal, StaffPrincipal
from api.repositories import scopes
from api.repositories.audit import audit_write, bind_request_id, snapshot
from api.repositories.base import apply_changes, get_one, invalid
from api.repositories.lessons import Slot, place_lesson
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.lessons import LessonCancel, LessonCreate, LessonOut, LessonReschedule, LessonUpdate
from core.settings import Settings
from models import Enrollment, Lesson, LessonKind, LessonStatus, Role, Student, Teacher

router = IndexedRouter(
    prefix="/api/v1/lessons",
    tags=["lessons"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 409, 422),
)

LessonSort = Annotated[
    SortOrder,
    Depends(sorting({"starts_at": Lesson.starts_at, "created_at": Lesson.created_at}, "starts_at")),
]


@router.get("", response_model=Page[LessonOut], summary="List the lessons the caller may see")
async def list_lessons(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    order: LessonSort,
    student_id: uuid.UUID | None = None,
    teacher_id: uuid.UUID | None = None,
    status: LessonStatus | None = None,
    kind: LessonKind | None = None,
    starts_from: AwareDatetime | None = None,
    starts_before: AwareDatetime | None = None,
) -> dict[str, Any]:
    query = scopes.lessons(principal)
    for column, value in (
        (col(Lesson.student_id), student_id),
        (col(Lesson.teacher_id), teacher_id),
        (col(Lesson.status), status),
        (col(Lesson.kind), kind),
    ):
        if value is not None:
            query = query.where(column == value)
    if starts_from is not None:
        query = query.where(col(Lesson.starts_at) >= starts_from)
    if starts_before is not None:
        query = query.where(col(Lesson.starts_at) < starts_before)
    rows, total = await fetch_page(session, query, page, order)
    return page_of(rows, total, page)


async def _lesson(session: SessionDep, principal: Principal, lesson_id: uuid.UUID) -> Lesson:
    lesson: Lesson = await get_one(session, scopes.lessons(principal).where(col(Lesson.id) == lesson_id), "lesson")
    return lesson


def _require_status(lesson: Lesson, *allowed: LessonStatus) -> None:
    if lesson.status not in allowed:
        raise CedarError(409, "invalid_status", f"the lesson is {lesson.status}; this needs {' or '.join(allowed)}")


def _require_not_demo(lesson: Lesson) -> None:
    if lesson.kind == LessonKind.demo:
        raise CedarError(409, "demo_lesson", "demo lessons are moved and cancelled through their enrollment")


@router.get("/{lesson_id}", response_model=LessonOut, summary="One lesson")
async def get_lesson(session: SessionDep, principal: CurrentPrincipal, lesson_id: uuid.UUID) -> Lesson:
    return await _lesson(session, principal, lesson_id)


@router.post("", response_model=LessonOut, status_code=201, summary="Book a lesson (409 on any conflict)")
async def create_lesson(
    session: SessionDep, settings: SettingsDep, principal: StaffPrincipal, body: LessonCreate
) -> Lesson:
    teacher_id = body.teacher_id or principal.teacher_id
    if teacher_id is None:
        raise invalid("teacher_id", "required")
    teacher = await get_one(session, scopes.teachers(principal).where(col(Teacher.id) == teacher_id), "teacher")
    if not teacher.is_active:
        raise invalid("teacher_id", "the teacher is not active")
    # A teacher books lessons for the students they already teach; an admin for anyone.
    student = await get_one(session, scopes.students(principal).where(col(Student.id) == body.student_id), "student")
    if not student.is_active:
        raise invalid("student_id", "the student is not active")
    if body.enrollment_id is not None:
        enrollment = await session.get(Enrollment, body.enrollment_id)
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


@router.post("/{lesson_id}/reschedule", response_model=LessonOut, summary="Move a lesson (409 on any conflict)")
async def reschedule_lesson(
    session: SessionDep, settings: SettingsDep, principal: StaffPrincipal, lesson_id: uuid.UUID, body: LessonReschedule
) -> Lesson:
    lesson = await _lesson(session, principal, lesson_id)
    _require_not_demo(lesson)
    _require_status(lesson, LessonStatus.scheduled)
    before = snapshot(lesson)
    length = timedelta(minutes=body.minutes) if body.minutes else lesson.ends_at - lesson.starts_at
    slot = Slot(lesson.id, lesson.teacher_id, lesson.student_id, body.starts_at, body.starts_at + length)
    await place_lesson(session, lesson, slot, settings, within_availability=_teacher_rules(principal, slot))
    await audit_write(session, principal, "reschedule", "lesson", lesson.id, before=before, after=snapshot(lesson))
    return lesson


def _check_parent_notice(lesson: Lesson, settings: Settings) -> None:
    cutoff = lesson.starts_at - settings.parent_cancel_notice
    if datetime.now(UTC) > cutoff:
        raise CedarError(
            409,
            "too_late_to_cancel",
            f"lessons can be cancelled online until {cutoff.isoformat()}; please call the school",
        )


@router.post("/{lesson_id}/cancel", response_model=LessonOut, summary="Cancel a lesson")
async def cancel_lesson(
    session: SessionDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    lesson_id: uuid.UUID,
    body: LessonCancel | None = None,
) -> Lesson:
    lesson = await _lesson(session, principal, lesson_id)
    _require_not_demo(lesson)
    _require_status(lesson, LessonStatus.scheduled, LessonStatus.suspended)
    if principal.role == Role.parent:
        _check_parent_notice(lesson, settings)
    return await _set_status(session, principal, lesson, LessonStatus.cancelled, body.reason if body else "")


async def _set_status(
    session: SessionDep, principal: Principal, lesson: Lesson, status: LessonStatus, reason: str = ""
) -> Lesson:
    before = snapshot(lesson)
    lesson.status = status
    lesson.updated_at = datetime.now(UTC)
    await session.flush()
    after = {**snapshot(lesson), **({"reason": reason} if reason else {})}
    await audit_write(session, principal, status.value, "lesson", lesson.id, before=before, after=after)
    return lesson


async def _mark_held(session: SessionDep, principal: Principal, lesson_id: uuid.UUID, status: LessonStatus) -> Lesson:
    lesson = await _lesson(session, principal, lesson_id)
    _require_status(lesson, LessonStatus.scheduled)
    if lesson.starts_at > datetime.now(UTC):
        raise CedarError(409, "not_started", "a lesson can be marked only once it has started")
    return await _set_status(session, principal, lesson, status)


@router.post("/{lesson_id}/complete", response_model=LessonOut, summary="Mark a lesson as taught")
async def complete_lesson(session: SessionDep, principal: StaffPrincipal, lesson_id: uuid.UUID) -> Lesson:
    return await _mark_held(session, principal, lesson_id, LessonStatus.completed)


@router.post("/{lesson_id}/no-show", response_model=LessonOut, summary="Mark that the student did not come")
async def no_show_lesson(session: SessionDep, principal: StaffPrincipal, lesson_id: uuid.UUID) -> Lesson:
    return await _mark_held(session, principal, lesson_id, LessonStatus.no_show)


@router.patch("/{lesson_id}", response_model=LessonOut, summary="Change a lesson's notes")
async def update_lesson(
    session: SessionDep, principal: StaffPrincipal, lesson_id: uuid.UUID, body: LessonUpdate
) -> Lesson:
    lesson = await _lesson(session, principal, lesson_id)
    before = snapshot(lesson)
    apply_changes(lesson, body.changes())
    lesson.updated_at = datetime.now(UTC)
    await session.flush()
    await audit_write(session, principal, "update", "lesson", lesson.id, before=before, after=snapshot(lesson))
    return lesson
