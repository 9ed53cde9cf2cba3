"""``/api/v1/lessons``: booking, moving, cancelling and marking lessons (the rules: ``api/services/lessons.py``).

Admins manage every lesson. A teacher books and moves their own lessons within their weekly availability and
marks them completed, no-show or cancelled. A parent sees their children's lessons and cancels them; the answer
says whether the cancellation earned a make-up credit or forfeited the lesson (docs/lessons.md).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends
from pydantic import AwareDatetime

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.pagination import Page, PageDep, SortOrder, page_of, sorting
from api.principal import CurrentPrincipal, StaffPrincipal
from api.repositories import lessons as repository
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.lessons import LessonCancel, LessonCreate, LessonOut, LessonReschedule, LessonUpdate
from api.schemas.makeups import LessonCancelled
from api.services import lessons as service
from models import Lesson, LessonKind, LessonStatus

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
    rows, total = await repository.list_lessons(
        session, principal, page, order, student_id, teacher_id, status, kind, starts_from, starts_before
    )
    return page_of(rows, total, page)


@router.get("/{lesson_id}", response_model=LessonOut, summary="One lesson")
async def get_lesson(session: SessionDep, principal: CurrentPrincipal, lesson_id: uuid.UUID) -> Lesson:
    return await repository.lesson(session, principal, lesson_id)


@router.post("", response_model=LessonOut, status_code=201, summary="Book a lesson (409 on any conflict)")
async def create_lesson(
    session: SessionDep, settings: SettingsDep, principal: StaffPrincipal, body: LessonCreate
) -> Lesson:
    return await service.create(session, settings, principal, body)


@router.post("/{lesson_id}/reschedule", response_model=LessonOut, summary="Move a lesson (409 on any conflict)")
async def reschedule_lesson(
    session: SessionDep, settings: SettingsDep, principal: StaffPrincipal, lesson_id: uuid.UUID, body: LessonReschedule
) -> Lesson:
    return await service.reschedule(session, settings, principal, lesson_id, body)


@router.post(
    "/{lesson_id}/cancel",
    response_model=LessonCancelled,
    summary="Cancel a lesson: the answer says whether it earned a make-up credit or was forfeited",
)
async def cancel_lesson(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: CurrentPrincipal,
    lesson_id: uuid.UUID,
    body: LessonCancel | None = None,
) -> LessonCancelled:
    cancelled = await service.cancel(session, temporal, settings, principal, lesson_id, body.reason if body else "")
    credit = cancelled.outcome.credit
    return LessonCancelled.model_validate(
        {
            **LessonOut.model_validate(cancelled.lesson).model_dump(),
            "outcome": cancelled.outcome.outcome.value,
            "credit_id": credit.id if credit else None,
            "credit_expires_at": credit.expires_at if credit else None,
        }
    )


@router.post("/{lesson_id}/complete", response_model=LessonOut, summary="Mark a lesson as taught")
async def complete_lesson(session: SessionDep, principal: StaffPrincipal, lesson_id: uuid.UUID) -> Lesson:
    return await service.mark_held(session, principal, lesson_id, LessonStatus.completed)


@router.post("/{lesson_id}/no-show", response_model=LessonOut, summary="Mark that the student did not come")
async def no_show_lesson(session: SessionDep, principal: StaffPrincipal, lesson_id: uuid.UUID) -> Lesson:
    return await service.mark_held(session, principal, lesson_id, LessonStatus.no_show)


@router.patch("/{lesson_id}", response_model=LessonOut, summary="Change a lesson's notes")
async def update_lesson(
    session: SessionDep, principal: StaffPrincipal, lesson_id: uuid.UUID, body: LessonUpdate
) -> Lesson:
    return await service.update(session, principal, lesson_id, body.changes())
