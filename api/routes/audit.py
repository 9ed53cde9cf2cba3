"""``/api/v1/audit-log``: who did or saw what, when (admin only, read only)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query
from pydantic import AwareDatetime

from api.deps import SessionDep
from api.pagination import Page, PageDep, SortOrder, page_of, sorting
from api.principal import AdminPrincipal
from api.repositories import audit
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.records import AuditEntryOut
from models import AuditLog

router = IndexedRouter(
    prefix="/api/v1/audit-log",
    tags=["audit"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 422),
)

AuditSort = Annotated[SortOrder, Depends(sorting({"occurred_at": AuditLog.occurred_at}, "-occurred_at"))]


@router.get("", response_model=Page[AuditEntryOut], summary="Search the audit log")
async def list_audit_log(
    session: SessionDep,
    principal: AdminPrincipal,
    page: PageDep,
    order: AuditSort,
    entity_type: Annotated[str | None, Query(max_length=64)] = None,
    entity_id: Annotated[str | None, Query(max_length=64)] = None,
    actor_user_id: uuid.UUID | None = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    occurred_from: AwareDatetime | None = None,
    occurred_before: AwareDatetime | None = None,
) -> dict[str, Any]:
    rows, total = await audit.search(
        session, page, order, entity_type, entity_id, actor_user_id, action, occurred_from, occurred_before
    )
    return page_of(rows, total, page)
