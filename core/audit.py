"""The audit log (PIPEDA): who did or read what, when, with the row before and after."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from models import AuditLog


async def record_audit(
    session: AsyncSession,
    *,
    actor_user_id: uuid.UUID | None,
    actor_role: str,
    action: str,
    entity_type: str,
    entity_id: object | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    request_id: str | None = None,
) -> uuid.UUID:
    """Adds an audit row to the caller's transaction, so it commits (or not) with the change it describes; its id
    (a workflow given a staff note keeps this reference, never the text)."""
    row = AuditLog(
        actor_user_id=actor_user_id,
        actor_role=actor_role,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id) if entity_id is not None else None,
        before=before,
        after=after,
        request_id=request_id,
    )
    session.add(row)
    return row.id
