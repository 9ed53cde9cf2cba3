"""``/api/v1/dunning``: what admins see of families in arrears, and their four actions on a family's dunning
workflow (pause, resume, retry now, forgive), each a signal into the workflow and a row in the audit log.

The workflow is the source of truth while it runs (its state query); billing_accounts mirrors its state for
lists and after it ends. An action the workflow cannot take now is a 409 with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Literal

from fastapi import Query, Request, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlmodel import col
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.access import ROUTE_ACCESS
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import Conflict, NotFound
from api.middleware import request_id
from api.principal import AdminPrincipal, Principal
from api.routing import IndexedRouter
from api.temporal_calls import bounded
from core.audit import record_audit
from core.contracts.dunning import (
    QUERY_STATE,
    SIGNAL_FORGIVE,
    SIGNAL_PAUSE,
    SIGNAL_RESUME,
    SIGNAL_RETRY_NOW,
    AdminAction,
    DunningEvent,
    DunningSnapshot,
    UnpaidInvoice,
)
from core.settings import Settings
from core.temporal import dunning_workflow_id
from domain.dunning import DunningState
from models import BillingAccount, Parent

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

_DUNNING = "the family's dunning"

Action = Literal["pause", "resume", "retry-now", "forgive"]
SIGNALS: dict[str, str] = {
    "pause": SIGNAL_PAUSE,
    "resume": SIGNAL_RESUME,
    "retry-now": SIGNAL_RETRY_NOW,
    "forgive": SIGNAL_FORGIVE,
}


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
    parent_id: uuid.UUID
    action: Action
    state: str


async def _running_snapshot(client: Client, settings: Settings, parent_id: uuid.UUID) -> DunningSnapshot | None:
    handle = client.get_workflow_handle(dunning_workflow_id(parent_id))
    timeout = settings.temporal_query_timeout
    async with bounded(timeout, _DUNNING, retry_after=settings.api_retry_after):
        try:
            if (await handle.describe(rpc_timeout=timeout)).status != WorkflowExecutionStatus.RUNNING:
                return None
            return await handle.query(QUERY_STATE, result_type=DunningSnapshot, rpc_timeout=timeout)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise


async def _require_family(session: SessionDep, parent_id: uuid.UUID) -> None:
    if await session.get(Parent, parent_id) is None:
        raise NotFound("family")


@router.get("/families", response_model=DunningList, summary="Families in arrears (admin)")
async def list_families(
    session: SessionDep,
    principal: AdminPrincipal,
    state: DunningState | None = Query(default=None, description="only this state; default: every non-clear one"),
) -> DunningList:
    query = select(col(BillingAccount.parent_id), col(BillingAccount.dunning_state), col(BillingAccount.dunning_paused))
    query = query.where(
        col(BillingAccount.dunning_state) == state if state else col(BillingAccount.dunning_state) != "clear"
    )
    rows = (await session.execute(query.order_by(col(BillingAccount.updated_at).desc()).limit(500))).all()
    data = [DunningListItem(parent_id=p, state=s, paused=paused) for p, s, paused in rows]
    return DunningList(data=data, count=len(data))


@router.get("/families/{parent_id}", response_model=DunningOut, summary="A family's dunning state (admin)")
async def family_dunning(
    parent_id: uuid.UUID, session: SessionDep, settings: SettingsDep, temporal: TemporalDep, principal: AdminPrincipal
) -> DunningOut:
    await _require_family(session, parent_id)
    snapshot = await _running_snapshot(temporal, settings, parent_id)
    if snapshot is not None:
        return DunningOut(active=True, **snapshot.model_dump(exclude={"parent_id"}), parent_id=parent_id)
    account = await session.scalar(select(BillingAccount).where(col(BillingAccount.parent_id) == parent_id))
    state, paused = (account.dunning_state, account.dunning_paused) if account else ("clear", False)
    return DunningOut(parent_id=parent_id, state=state, paused=paused, active=False)


def _refusal(action: str, snapshot: DunningSnapshot | None) -> str | None:
    """Why the workflow cannot take ``action`` now, or None."""
    if snapshot is None:
        return "this family is not in dunning"
    if action == "pause" and snapshot.paused:
        return "dunning is already paused for this family"
    if action == "resume" and not snapshot.paused:
        return "dunning is not paused for this family"
    if action in ("retry-now", "forgive") and not snapshot.invoices:
        return "this family has no unpaid invoice"
    return None


async def _act(
    action: Action,
    parent_id: uuid.UUID,
    body: ActionIn,
    request: Request,
    session: SessionDep,
    settings: Settings,
    temporal: Client,
    principal: Principal,
) -> ActionAccepted:
    await _require_family(session, parent_id)
    snapshot = await _running_snapshot(temporal, settings, parent_id)
    refusal = _refusal(action, snapshot)
    if refusal is not None or snapshot is None:
        raise Conflict(refusal or "this family is not in dunning")
    handle = temporal.get_workflow_handle(dunning_workflow_id(parent_id))
    action_message = AdminAction(actor_user_id=principal.user_id, reason=body.reason)
    async with bounded(settings.temporal_query_timeout, _DUNNING):
        await handle.signal(SIGNALS[action], action_message, rpc_timeout=settings.temporal_query_timeout)
    await record_audit(
        session,
        actor_user_id=principal.user_id,
        actor_role="admin",
        action=f"dunning.{action}",
        entity_type="family_dunning",
        entity_id=parent_id,
        before={"state": snapshot.state, "paused": snapshot.paused},
        after={"action": action, "reason": body.reason},
        request_id=request_id(request),
    )
    return ActionAccepted(parent_id=parent_id, action=action, state=snapshot.state)


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
    ) -> ActionAccepted:
        return await _act(action, parent_id, body, request, session, settings, temporal, principal)

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
