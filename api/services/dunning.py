"""Dunning: a family's state (its running workflow's, else the mirror's) and the admins' four actions on the
family's dunning workflow (pause, resume, retry now, forgive), each an update (whose validator refuses what the
family's state forbids) and a row in the audit log."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.exceptions import FailureError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Conflict, NotFound
from api.principal import Principal
from api.repositories import billing
from api.repositories import dunning as repository
from api.repositories.audit import audit_staff_reads
from api.temporal_calls import bounded
from core.audit import record_audit
from core.contracts.dunning import ADMIN_UPDATES, QUERY_STATE, AdminAction, DunningSnapshot
from core.settings import Settings
from core.temporal import dunning_workflow_id

_DUNNING = "the family's dunning"
_NOT_IN_DUNNING = "this family is not in dunning"


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


def update_id(action: str, parent_id: uuid.UUID, idempotency_key: uuid.UUID | None) -> str | None:
    """The update's id from the request's ``Idempotency-Key`` (scoped by family and action), so a retried request
    gets the first one's answer; None without a key (Temporal picks one)."""
    return f"dunning:{parent_id}:{action}:{idempotency_key}" if idempotency_key is not None else None


async def act(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    action: str,
    parent_id: uuid.UUID,
    reason: str,
    request_id: str | None,
    idempotency_key: uuid.UUID | None = None,
) -> DunningSnapshot:
    """``action`` as an update of the family's dunning workflow, audited; its answer, the family's snapshot after
    the action. What the family's state forbids is refused by the workflow's validator: a 409 with its reason."""
    await _require_family(session, parent_id)
    snapshot = await _running_snapshot(temporal, settings, parent_id)
    if snapshot is None:
        raise Conflict(_NOT_IN_DUNNING)
    # The reason stays in the database (the audit row); the workflow's history gets the row's id only. A refused
    # update rolls the row back with the request; a retried request (same key) keeps its first row.
    after: dict[str, object] = {"action": action, "reason": reason}
    if idempotency_key is not None:
        after["idempotency_key"] = str(idempotency_key)
    note_id = await repository.action_note(session, parent_id, action, idempotency_key) or await record_audit(
        session,
        actor_user_id=principal.user_id,
        actor_role="admin",
        action=f"dunning.{action}",
        entity_type="family_dunning",
        entity_id=parent_id,
        before={"state": snapshot.state, "paused": snapshot.paused},
        after=after,
        request_id=request_id,
    )
    handle = temporal.get_workflow_handle(dunning_workflow_id(parent_id))
    message = AdminAction(actor_user_id=principal.user_id, note_id=note_id)
    timeout = settings.temporal_update_timeout
    async with bounded(timeout, _DUNNING):
        try:
            answer = await handle.execute_update(
                ADMIN_UPDATES[action],
                message,
                id=update_id(action, parent_id, idempotency_key),
                result_type=DunningSnapshot,
                rpc_timeout=timeout,
            )
        except WorkflowUpdateFailedError as error:
            # The validator's refusal (or the handler's failure): its message alone.
            cause = error.cause
            raise Conflict(cause.message if isinstance(cause, FailureError) else str(error)) from error
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:  # the workflow ended meanwhile
                raise Conflict(_NOT_IN_DUNNING) from error
            raise
    return await _with_reasons(session, answer)


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
