"""``/api/v1/dunning``: what admins see of families in arrears, and their four actions on a family's dunning
workflow (pause, resume, retry now, forgive), each an update of the workflow and a row in the audit log.

The workflow is the source of truth while it runs (its state query); billing_accounts mirrors its state for
lists and after it ends. An action the workflow cannot take now is refused by the update's validator: a 409 with
the reason. An ``Idempotency-Key`` header (a UUID) makes a retried request get the first one's answer.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import Header, Query, Request, status
from pydantic import BaseModel, Field
from temporalio.client import Client

from api.access import ROUTE_ACCESS
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.middleware import request_id
from api.principal import AdminPrincipal, Principal
from api.repositories import dunning as repository
from api.routing import IndexedRouter
from api.services import dunning as service
from core.contracts.dunning import DunningEvent, DunningSnapshot, UnpaidInvoice
from core.settings import Settings
from domain.dunning import DunningState

router = IndexedRouter(prefix="/api/v1/dunning", tags=["dunning"])
_ADMIN = frozenset({"admin"})
ROUTE_ACCESS.update(
    {
        ("GET", "/api/v1/dunning/families"): _ADMIN,
        ("GET", "/api/v1/dunning/families/{parent_id}"): _ADMIN,
        **{
            ("POST", f"/api/v1/dunning/families/{{parent_id}}/{action}"): _ADMIN
            for action in ("pause", "resume", "retry-now", "forgive")
        },
    }
)

Action = Literal["pause", "resume", "retry-now", "forgive"]


class DunningOut(BaseModel):
    parent_id: uuid.UUID
    state: str
    paused: bool
    # Whether the family's dunning workflow is running (False: the state is the last one it recorded).
    active: bool
    lessons_suspended: bool = False
    invoices: list[UnpaidInvoice] = []
    next_action_at: datetime | None = None
    timeline: list[DunningEvent] = []


class DunningListItem(BaseModel):
    parent_id: uuid.UUID
    state: str
    paused: bool


class DunningList(BaseModel):
    data: list[DunningListItem]
    count: int


class ActionIn(BaseModel):
    reason: str = Field(min_length=3, max_length=500, description="why (kept in the audit log)")


class ActionAccepted(BaseModel):
    """The workflow's answer: the family's dunning after the action."""

    parent_id: uuid.UUID
    action: Action
    state: str
    paused: bool
    lessons_suspended: bool = False
    invoices: list[UnpaidInvoice] = []
    next_action_at: datetime | None = None
    timeline: list[DunningEvent] = []


@router.get("/families", response_model=DunningList, summary="Families in arrears (admin)")
async def list_families(
    session: SessionDep,
    principal: AdminPrincipal,
    state: DunningState | None = Query(default=None, description="only this state; default: every non-clear one"),
) -> DunningList:
    rows = await repository.families_in(session, state)
    data = [DunningListItem(parent_id=p, state=s, paused=paused) for p, s, paused in rows]
    return DunningList(data=data, count=len(data))


@router.get("/families/{parent_id}", response_model=DunningOut, summary="A family's dunning state (admin)")
async def family_dunning(
    parent_id: uuid.UUID, session: SessionDep, settings: SettingsDep, temporal: TemporalDep, principal: AdminPrincipal
) -> DunningOut:
    found = await service.family_state(session, temporal, settings, parent_id)
    if isinstance(found, DunningSnapshot):
        return DunningOut(active=True, **found.model_dump(exclude={"parent_id"}), parent_id=parent_id)
    state, paused = found
    return DunningOut(parent_id=parent_id, state=state, paused=paused, active=False)


async def _act(
    action: Action,
    parent_id: uuid.UUID,
    body: ActionIn,
    request: Request,
    session: SessionDep,
    settings: Settings,
    temporal: Client,
    principal: Principal,
    idempotency_key: uuid.UUID | None,
) -> ActionAccepted:
    answer = await service.act(
        session, temporal, settings, principal, action, parent_id, body.reason, request_id(request), idempotency_key
    )
    return ActionAccepted(action=action, **answer.model_dump(exclude={"parent_id"}), parent_id=parent_id)


SUMMARIES: dict[Action, str] = {
    "pause": "Pause a family's dunning: its clock stops (admin)",
    "resume": "Resume a paused family's dunning (admin)",
    "retry-now": "Have billing retry every unpaid invoice now (admin)",
    "forgive": "Forgive the debt: written off, the family clear (admin)",
}


def _endpoint(action: Action) -> Callable[..., Awaitable[ActionAccepted]]:
    async def endpoint(
        parent_id: uuid.UUID,
        body: ActionIn,
        request: Request,
        session: SessionDep,
        settings: SettingsDep,
        temporal: TemporalDep,
        principal: AdminPrincipal,
        idempotency_key: Annotated[uuid.UUID | None, Header(alias="Idempotency-Key")] = None,
    ) -> ActionAccepted:
        return await _act(action, parent_id, body, request, session, settings, temporal, principal, idempotency_key)

    return endpoint


for _action, _summary in SUMMARIES.items():
    router.add_api_route(
        f"/families/{{parent_id}}/{_action}",
        _endpoint(_action),
        methods=["POST"],
        name=_action.replace("-", "_"),
        summary=_summary,
        response_model=ActionAccepted,
        status_code=status.HTTP_202_ACCEPTED,
    )
