"""Audit helpers for the school's API: every write, and every staff read of a family's personal data."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from api.middleware import request_id
from api.pagination import PageParams, SortOrder, fetch_page
from api.principal import Principal
from core.audit import record_audit
from models import AuditLog, Role

STAFF_ROLES = (Role.admin, Role.teacher)
# The request being served, so each audit row links to the request's logs without every route passing it on.
_request_id: ContextVar[str | None] = ContextVar("audit_request_id", default=None)


async def bind_request_id(request: Request) -> None:
    """A router dependency: async, so it runs in the endpoint's own context and the id is visible there."""
    _request_id.set(request_id(request))


def snapshot(row: SQLModel) -> dict[str, Any]:
    """A JSON-able copy of a row for the audit log's before/after."""
    return row.model_dump(mode="json")


async def audit_write(
    session: AsyncSession,
    principal: Principal,
    action: str,
    entity_type: str,
    entity_id: object,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> uuid.UUID:
    """The audit row of a write, in the caller's transaction; its id (a workflow given a staff note keeps it)."""
    return await record_audit(
        session,
        actor_user_id=principal.user_id,
        actor_role=str(principal.role),
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=before,
        after=after,
        request_id=_request_id.get(),
    )


# One statement per page of reads, whatever its size: a row per record, unnested from one array parameter.
# set_config(..., true) is SET LOCAL: only GET routes record reads, so these rows are the transaction's only
# writes and need not wait for the WAL to reach the disk (a crash may lose the last instant of read rows,
# never a change).
_INSERT_READS = text(
    "INSERT INTO audit_log (id, occurred_at, actor_user_id, actor_role, action, entity_type, entity_id, request_id) "
    "SELECT gen_random_uuid(), :now, :actor, :role, 'read', :entity_type, entity_id, :request_id "
    "FROM unnest(CAST(:ids AS text[])) AS entity_id, set_config('synchronous_commit', 'off', true) AS durability"
)


async def audit_staff_reads(
    session: AsyncSession, principal: Principal, entity_type: str, ids: Iterable[object]
) -> None:
    """One ``read`` row per family record a teacher or admin saw, so a family can learn who looked at their data.

    A page of reads is written by one small INSERT … SELECT unnest(…) rather than one ORM object per row, which
    cost more than the list itself. Read rows have no before/after.
    """
    if principal.role not in STAFF_ROLES:
        return
    entity_ids = [str(entity_id) for entity_id in ids]
    if entity_ids:
        await session.execute(
            _INSERT_READS,
            {
                "now": datetime.now(UTC),
                "actor": principal.user_id,
                "role": str(principal.role),
                "entity_type": entity_type,
                "request_id": _request_id.get(),
                "ids": entity_ids,
            },
        )


async def search(
    session: AsyncSession,
    page: PageParams,
    order: SortOrder,
    entity_type: str | None,
    entity_id: str | None,
    actor_user_id: uuid.UUID | None,
    action: str | None,
    occurred_from: datetime | None,
    occurred_before: datetime | None,
) -> tuple[Sequence[Any], int]:
    """One page of the audit log's rows matching every filter given."""
    query = select(AuditLog)
    for column, value in (
        (col(AuditLog.entity_type), entity_type),
        (col(AuditLog.entity_id), entity_id),
        (col(AuditLog.actor_user_id), actor_user_id),
        (col(AuditLog.action), action),
    ):
        if value is not None:
            query = query.where(column == value)
    if occurred_from is not None:
        query = query.where(col(AuditLog.occurred_at) >= occurred_from)
    if occurred_before is not None:
        query = query.where(col(AuditLog.occurred_at) < occurred_before)
    return await fetch_page(session, query, page, order)
