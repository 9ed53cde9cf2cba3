"""Dunning: a family's state (its running workflow's, else the mirror's) and the admins' four actions on the
family's dunning workflow (pause, resume, retry now, forgive), each a signal and a row in the audit log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Conflict, NotFound
from api.principal import Principal
from api.repositories import billing
from api.repositories import dunning as repository
from api.repositories.audit import audit_staff_reads
from api.temporal_calls import bounded
from core.audit import record_audit
from core.contracts.dunning import (
    QUERY_STATE,
    SIGNAL_FORGIVE,
    SIGNAL_PAUSE,
    SIGNAL_RESUME,
    SIGNAL_RETRY_NOW,
    AdminAction,
    DunningSnapshot,
)
from core.settings import Settings
from core.temporal import dunning_workflow_id

_DUNNING = "the family's dunning"
SIGNALS: dict[str, str] = {
    "pause": SIGNAL_PAUSE,
    "resume": SIGNAL_RESUME,
    "retry-now": SIGNAL_RETRY_NOW,
    "forgive": SIGNAL_FORGIVE,
}


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


async def _require_family(session: AsyncSession, parent_id: uuid.UUID) -> None:
    if not await repository.family_exists(session, parent_id):
        raise NotFound("family")


async def family_state(
    session: AsyncSession, temporal: Client, settings: Settings, parent_id: uuid.UUID
) -> DunningSnapshot | tuple[str, bool]:
    """The running workflow's snapshot; once it is not running, the (state, paused) it last recorded."""
    await _require_family(session, parent_id)
    snapshot = await _running_snapshot(temporal, settings, parent_id)
    if snapshot is not None:
        return await _with_reasons(session, snapshot)
    account = await billing.account_of(session, parent_id)
    return (account.dunning_state, account.dunning_paused) if account else ("clear", False)


async def _with_reasons(session: AsyncSession, snapshot: DunningSnapshot) -> DunningSnapshot:
    """The timeline's admin actions with the reasons their audit rows hold (an erased family's are gone)."""
    notes = await repository.action_reasons(session, [e.note_id for e in snapshot.timeline if e.note_id])
    for event in snapshot.timeline:
        if event.note_id is not None and not event.detail:
            event.detail = notes.get(event.note_id, "")
    return snapshot


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


async def act(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    action: str,
    parent_id: uuid.UUID,
    reason: str,
    request_id: str | None,
) -> str:
    """Signals ``action`` to the family's dunning workflow (a 409 when it cannot take it now) and audits it;
    the family's state before the action."""
    await _require_family(session, parent_id)
    snapshot = await _running_snapshot(temporal, settings, parent_id)
    refusal = _refusal(action, snapshot)
    if refusal is not None or snapshot is None:
        raise Conflict(refusal or "this family is not in dunning")
    # The reason stays in the database (the audit row); the workflow's history gets the row's id only. A failed
    # signal rolls the row back with the request.
    note_id = await record_audit(
        session,
        actor_user_id=principal.user_id,
        actor_role="admin",
        action=f"dunning.{action}",
        entity_type="family_dunning",
        entity_id=parent_id,
        before={"state": snapshot.state, "paused": snapshot.paused},
        after={"action": action, "reason": reason},
        request_id=request_id,
    )
    handle = temporal.get_workflow_handle(dunning_workflow_id(parent_id))
    action_message = AdminAction(actor_user_id=principal.user_id, note_id=note_id)
    async with bounded(settings.temporal_query_timeout, _DUNNING):
        await handle.signal(SIGNALS[action], action_message, rpc_timeout=settings.temporal_query_timeout)
    return snapshot.state


@dataclass(frozen=True)
class FamilyInArrears:
    parent_id: uuid.UUID
    state: str
    paused: bool
    parent_name: str
    past_due_invoices: int
    owed_minor: int


async def families_in_arrears(session: AsyncSession, principal: Principal) -> list[FamilyInArrears]:
    """The office's list: every family in dunning, paused, or with a past-due invoice, with the parent's name
    (a read of family data, audited)."""
    rows = [
        FamilyInArrears(parent_id, state, paused, f"{first} {last}", int(count), int(owed))
        for parent_id, state, paused, first, last, count, owed in await repository.arrears(session)
    ]
    await audit_staff_reads(session, principal, "parent", (row.parent_id for row in rows))
    return rows


async def family_name(session: AsyncSession, principal: Principal, parent_id: uuid.UUID) -> str:
    """The parent's name for the office's page of one family (a 404 for no such family; the read audited)."""
    name = await repository.family_name(session, parent_id)
    if name is None:
        raise NotFound("family")
    await audit_staff_reads(session, principal, "parent", [parent_id])
    return " ".join(name)
