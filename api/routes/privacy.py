"""PIPEDA: a family's right of access (a full export) and erasure (admin, on the family's request)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import IdentityDep, SessionDep, TransactionDep
from api.errors import CedarError
from api.principal import AdminPrincipal, Principal, TransactionPrincipal, ensure_role
from api.repositories.privacy import erase_family, family_export
from api.routing import IndexedRouter
from core.audit import record_audit
from models import Role

router = IndexedRouter(prefix="/api/v1", tags=["privacy"])


@router.get("/privacy/export", summary="Everything Cedar holds about the signed-in parent's family")
async def export_my_family(principal: TransactionPrincipal, session: TransactionDep) -> dict[str, Any]:
    if principal.role != Role.parent or principal.parent_id is None:
        raise CedarError(403, "forbidden", "only a parent can export their own family's data")
    return await _audited_export(session, principal, principal.parent_id)


@router.get("/parents/{parent_id}/export", summary="A family's data export, for an access request (admin)")
async def export_family(
    parent_id: uuid.UUID, principal: TransactionPrincipal, session: TransactionDep
) -> dict[str, Any]:
    return await _audited_export(session, ensure_role(principal, Role.admin), parent_id)


async def _audited_export(session: AsyncSession, principal: Principal, parent_id: uuid.UUID) -> dict[str, Any]:
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


@router.post("/parents/{parent_id}/erasure", summary="Erase a family's personal data (admin)")
async def erase(
    parent_id: uuid.UUID, principal: AdminPrincipal, session: SessionDep, identity: IdentityDep
) -> dict[str, Any]:
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
    return {"parent_id": str(parent_id), "erased": counts}
