"""``/api/v1/makeups``: make-up credits (the rules: ``api/services/makeups.py``, ``domain/makeups.py``).

A parent lists their family's credits, sees a credit's open slots and books a make-up with it; the office
grants, extends and voids credits, each with a reason kept in the audit log, and gets the credit's workflow's answer.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.principal import AdminPrincipal, Principal, require_roles
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.lessons import LessonOut
from api.schemas.makeups import (
    CreditAnswer,
    CreditExtend,
    CreditGrant,
    CreditVoid,
    MakeupBooked,
    MakeupBooking,
    MakeupCreditOut,
    OpenSlotOut,
)
from api.services import makeups as service
from core.contracts.makeup import MakeupCreditState
from domain.makeups import CreditStatus
from models import MakeupCredit, Role

router = IndexedRouter(
    prefix="/api/v1/makeups",
    tags=["make-up credits"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 409, 422),
)

FamilyPrincipal = Annotated[Principal, Depends(require_roles(Role.admin, Role.parent))]


def _answer(state: MakeupCreditState) -> dict[str, Any]:
    return state.model_dump()


@router.get("/credits", response_model=list[MakeupCreditOut], summary="The make-up credits the caller may see")
async def list_credits(
    session: SessionDep,
    principal: FamilyPrincipal,
    student_id: uuid.UUID | None = None,
    status: CreditStatus | None = None,
) -> Any:
    return await service.list_credits(session, principal, student_id, status)


@router.get("/credits/{credit_id}/slots", response_model=list[OpenSlotOut], summary="Open slots for a credit's make-up")
async def open_slots(
    session: SessionDep, settings: SettingsDep, principal: FamilyPrincipal, credit_id: uuid.UUID
) -> Any:
    return await service.open_slots(session, settings, principal, credit_id)


@router.post(
    "/credits/{credit_id}/book",
    response_model=MakeupBooked,
    status_code=201,
    summary="Book a make-up with a credit (409 when another request took the credit or the slot first)",
)
async def book(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: FamilyPrincipal,
    credit_id: uuid.UUID,
    body: MakeupBooking,
) -> dict[str, Any]:
    lesson, state = await service.book(session, temporal, settings, principal, credit_id, body)
    return {"lesson": LessonOut.model_validate(lesson), "credit": _answer(state)}


@router.post("/credits", response_model=MakeupCreditOut, status_code=201, summary="Grant a make-up credit")
async def grant(
    session: SessionDep, temporal: TemporalDep, settings: SettingsDep, principal: AdminPrincipal, body: CreditGrant
) -> MakeupCredit:
    return await service.grant(session, temporal, settings, principal, body)


@router.post("/credits/{credit_id}/extend", response_model=CreditAnswer, summary="Extend a credit's expiry")
async def extend(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    credit_id: uuid.UUID,
    body: CreditExtend,
) -> dict[str, Any]:
    return _answer(await service.extend(session, temporal, settings, principal, credit_id, body))


@router.post("/credits/{credit_id}/void", response_model=CreditAnswer, summary="Void a credit")
async def void(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    credit_id: uuid.UUID,
    body: CreditVoid,
) -> dict[str, Any]:
    return _answer(await service.void(session, temporal, settings, principal, credit_id, body))
