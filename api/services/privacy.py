"""PIPEDA: a family's export and erasure, each with the audit row saying who took or erased it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.principal import Principal
from api.repositories.privacy import erase_family, family_export
from core.audit import record_audit
from core.identity import IdentityService


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


async def erase(
    session: AsyncSession, principal: Principal, identity: IdentityService, parent_id: uuid.UUID
) -> dict[str, int]:
    """What was erased, by kind and count."""
    counts = await erase_family(session, identity, parent_id)
    # The audit row names what was erased by id and count only: it must not keep what it erased.
    await record_audit(
        session,
        actor_user_id=principal.user_id,
        actor_role=principal.role,
        action="erase",
        entity_type="parent",
        entity_id=parent_id,
        after=counts,
    )
    return counts
