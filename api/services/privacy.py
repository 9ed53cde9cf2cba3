"""PIPEDA: a family's export and erasure, each with the audit row saying who took or asked for it.

Erasure runs as FamilyErasureWorkflow (``erasure-{parent}``): the request starts it and answers at once; its
report (what was erased where, with counts) is read back once the workflow has stored it.
"""

from __future__ import annotations

import uuid
from contextlib import suppress
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.erasure import stored_report
from api.errors import NotFound
from api.principal import Principal
from api.repositories.privacy import erasure_report, family_export
from api.temporal_calls import bounded
from core.audit import record_audit
from core.contracts.erasure import (
    FAMILY_ERASURE_WORKFLOW,
    QUERY_PROGRESS,
    ErasureRequest,
    StepResult,
    erasure_workflow_id,
)
from core.settings import Settings
from models import Parent

_ERASURE = "the family's erasure"


async def audited_export(session: AsyncSession, principal: Principal, parent_id: uuid.UUID) -> dict[str, Any]:
    """The family's export, with the audit row saying who took it (in the export's own transaction)."""
    export = await family_export(session, parent_id)
    await record_audit(
        session,
        actor_user_id=principal.user_id,
        actor_role=principal.role,
        action="export",
        entity_type="parent",
        entity_id=parent_id,
    )
    return export


async def request_erasure(
    session: AsyncSession, temporal: Client, settings: Settings, principal: Principal, parent_id: uuid.UUID
) -> str:
    """Starts the family's erasure workflow (or finds it running) and answers with its id. A family erased
    already is erased again, which changes nothing: the request is audited the first time only."""
    if await session.get(Parent, parent_id) is None:
        raise NotFound("parent")
    workflow_id = erasure_workflow_id(parent_id)
    request = ErasureRequest(parent_id=parent_id, requested_by=principal.user_id, requested_role=principal.role)
    # An erasure asked for earlier and still running is the one this request gets.
    async with bounded(settings.temporal_query_timeout, _ERASURE):
        with suppress(WorkflowAlreadyStartedError):
            await temporal.start_workflow(
                FAMILY_ERASURE_WORKFLOW,
                request,
                id=workflow_id,
                task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                static_summary=f"Family erasure, asked by {principal.role}",
                rpc_timeout=settings.temporal_query_timeout,
            )
    if await erasure_report(session, parent_id) is None:
        await record_audit(
            session,
            actor_user_id=principal.user_id,
            actor_role=principal.role,
            action="erase.requested",
            entity_type="parent",
            entity_id=parent_id,
        )
    return workflow_id


async def erasure_status(
    session: AsyncSession, temporal: Client, settings: Settings, parent_id: uuid.UUID
) -> dict[str, Any]:
    """The stored report once the erasure is done; while it runs, the steps done so far."""
    stored = await erasure_report(session, parent_id)
    workflow_id = erasure_workflow_id(parent_id)
    if stored is not None:
        return {"status": "completed", **stored_report(stored).model_dump(mode="json")}
    try:
        async with bounded(settings.temporal_query_timeout, _ERASURE, retry_after=settings.api_retry_after):
            steps = await temporal.get_workflow_handle(workflow_id).query(
                QUERY_PROGRESS, result_type=list[StepResult], rpc_timeout=settings.temporal_query_timeout
            )
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            raise NotFound("erasure") from error
        raise
    return {
        "status": "running",
        "parent_id": str(parent_id),
        "workflow_id": workflow_id,
        "steps": [step.model_dump(mode="json") for step in steps],
    }
