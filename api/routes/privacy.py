"""PIPEDA: a family's right of access (a full export) and erasure (admin, on the family's request)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import status

from api.deps import SessionDep, SettingsDep, TemporalDep, TransactionDep
from api.errors import CedarError
from api.principal import AdminPrincipal, TransactionPrincipal, ensure_role
from api.routing import IndexedRouter
from api.services import privacy as service
from models import Role

router = IndexedRouter(prefix="/api/v1", tags=["privacy"])


@router.get("/privacy/export", summary="Everything Cedar holds about the signed-in parent's family")
async def export_my_family(principal: TransactionPrincipal, session: TransactionDep) -> dict[str, Any]:
    if principal.role != Role.parent or principal.parent_id is None:
        raise CedarError(403, "forbidden", "only a parent can export their own family's data")
    return await service.audited_export(session, principal, principal.parent_id)


@router.get("/parents/{parent_id}/export", summary="A family's data export, for an access request (admin)")
async def export_family(
    parent_id: uuid.UUID, principal: TransactionPrincipal, session: TransactionDep
) -> dict[str, Any]:
    return await service.audited_export(session, ensure_role(principal, Role.admin), parent_id)


@router.post(
    "/parents/{parent_id}/erasure",
    summary="Erase a family's personal data everywhere it is held (admin); runs as a workflow",
    status_code=status.HTTP_202_ACCEPTED,
)
async def erase(
    parent_id: uuid.UUID, principal: AdminPrincipal, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> dict[str, Any]:
    workflow_id = await service.request_erasure(session, temporal, settings, principal, parent_id)
    return {"parent_id": str(parent_id), "workflow_id": workflow_id, "status": "started"}


@router.get("/parents/{parent_id}/erasure", summary="A family's erasure report: what was erased where (admin)")
async def erasure_report(
    parent_id: uuid.UUID, principal: AdminPrincipal, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> dict[str, Any]:
    return await service.erasure_status(session, temporal, settings, parent_id)
