"""Re-enrollment (``api/services/reenrollments.py``, docs/school-year.md).

The office opens re-enrollment for a semester and reads who answered what and each teacher's weekly schedule; a
parent (or the office) reads the family's offers and answers them until the deadline.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Path

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.principal import AdminPrincipal, Principal, StaffPrincipal, require_roles
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.reenrollments import (
    AnswersIn,
    OfferOut,
    ReenrollmentOpen,
    ReenrollmentOpened,
    ReenrollmentOut,
    ScheduleRowOut,
)
from api.services import reenrollments as service
from domain.reenrollment import Answer
from models import Role

router = IndexedRouter(
    prefix="/api/v1",
    tags=["re-enrollment"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 409, 422),
)

FamilyPrincipal = Annotated[Principal, Depends(require_roles(Role.admin, Role.parent))]
ReenrollmentId = Annotated[str, Path(min_length=1, max_length=100, pattern=r"^reenrollment-[0-9a-f-]{73}$")]


@router.post(
    "/semesters/{semester_id}/reenrollment",
    response_model=ReenrollmentOpened,
    status_code=202,
    summary="Open re-enrollment for the semester after this one (every family with an active student)",
)
async def open_reenrollment(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    semester_id: uuid.UUID,
    body: ReenrollmentOpen | None = None,
) -> dict[str, Any]:
    return await service.open_for_semester(
        session, temporal, settings, principal, semester_id, body or ReenrollmentOpen()
    )


@router.get(
    "/semesters/{semester_id}/reenrollment",
    response_model=list[OfferOut],
    summary="Every offer made at the end of this semester, with its answer",
)
async def office_list(
    session: SessionDep, principal: AdminPrincipal, semester_id: uuid.UUID, answer: Answer | None = None
) -> list[dict[str, Any]]:
    return await service.office_list(session, semester_id, answer)


@router.get(
    "/semesters/{semester_id}/schedule",
    response_model=list[ScheduleRowOut],
    summary="Each teacher's booked weekly lessons in the semester (a teacher: their own)",
)
async def semester_schedule(
    session: SessionDep,
    settings: SettingsDep,
    principal: StaffPrincipal,
    semester_id: uuid.UUID,
    teacher_id: uuid.UUID | None = None,
) -> list[dict[str, Any]]:
    return await service.schedule(session, settings, principal, semester_id, teacher_id)


@router.get("/reenrollments/{reenrollment_id}", response_model=ReenrollmentOut, summary="A family's offers")
async def family_view(session: SessionDep, principal: FamilyPrincipal, reenrollment_id: ReenrollmentId) -> Any:
    return await service.family_view(session, principal, reenrollment_id)


@router.post(
    "/reenrollments/{reenrollment_id}/answers",
    response_model=ReenrollmentOut,
    summary="Answer the offers per student (returning or not); answers can change until the deadline",
)
async def answer(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: FamilyPrincipal,
    reenrollment_id: ReenrollmentId,
    body: AnswersIn,
) -> Any:
    return await service.answer(session, temporal, settings, principal, reenrollment_id, body)
