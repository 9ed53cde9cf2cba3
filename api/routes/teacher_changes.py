"""Teacher changes (admin): a substitute for a lesson or a range of days (undone by deleting it), and a
student's transfer to another teacher from a date (the rules: ``api/services/teacher_changes.py``)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import Depends

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.principal import AdminPrincipal
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.teacher_changes import SubstitutionCreate, SubstitutionOut, TransferCreate, TransferOut
from api.services import teacher_changes as service
from models import Lesson, Substitution

router = IndexedRouter(
    prefix="/api/v1",
    tags=["teacher changes"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 409, 422),
)


def _out(substitution: Substitution, lessons: list[Lesson]) -> dict[str, Any]:
    return {**substitution.model_dump(), "lessons": lessons}


@router.post(
    "/teachers/{teacher_id}/substitutions",
    response_model=SubstitutionOut,
    status_code=201,
    summary="A substitute teaches one lesson or the lessons of a range of days (all or nothing)",
)
async def substitute(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    teacher_id: uuid.UUID,
    body: SubstitutionCreate,
) -> dict[str, Any]:
    return _out(*await service.substitute(session, temporal, settings, principal, teacher_id, body))


@router.delete(
    "/teachers/{teacher_id}/substitutions/{substitution_id}",
    response_model=SubstitutionOut,
    summary="Undo a substitution: its lessons ahead go back to the regular teacher",
)
async def undo_substitution(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    teacher_id: uuid.UUID,
    substitution_id: uuid.UUID,
) -> dict[str, Any]:
    return _out(*await service.undo_substitution(session, temporal, settings, principal, teacher_id, substitution_id))


@router.post(
    "/enrollments/{enrollment_id}/transfer",
    response_model=TransferOut,
    summary="Transfer the student to another teacher from a date (place, lessons and enrollment together)",
)
async def transfer(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    enrollment_id: uuid.UUID,
    body: TransferCreate,
) -> dict[str, Any]:
    return await service.transfer(session, temporal, settings, principal, enrollment_id, body)
