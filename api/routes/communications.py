"""``/api/v1/communications``: the emails Cedar sent (read only); a parent or teacher sees their own."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query
from sqlmodel import col

from api.deps import SessionDep
from api.pagination import Page, PageDep, SortOrder, fetch_page, page_of, sorting
from api.principal import CurrentPrincipal
from api.repositories import scopes
from api.repositories.audit import audit_staff_reads, bind_request_id
from api.repositories.base import get_one
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.records import CommunicationOut
from models import Communication, CommunicationStatus

router = IndexedRouter(
    prefix="/api/v1/communications",
    tags=["communications"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 404, 422),
)

CommunicationSort = Annotated[
    SortOrder,
    Depends(sorting({"created_at": Communication.created_at, "sent_at": Communication.sent_at}, "-created_at")),
]


@router.get("", response_model=Page[CommunicationOut], summary="List emails sent to or about the caller")
async def list_communications(
    session: SessionDep,
    principal: CurrentPrincipal,
    page: PageDep,
    order: CommunicationSort,
    parent_id: uuid.UUID | None = None,
    enrollment_id: uuid.UUID | None = None,
    status: CommunicationStatus | None = None,
    template: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    query = scopes.communications(principal)
    for column, value in (
        (col(Communication.parent_id), parent_id),
        (col(Communication.enrollment_id), enrollment_id),
        (col(Communication.status), status),
        (col(Communication.template), template),
    ):
        if value is not None:
            query = query.where(column == value)
    rows, total = await fetch_page(session, query, page, order)
    await audit_staff_reads(session, principal, "communication", (row.id for row in rows if row.parent_id))
    return page_of(rows, total, page)


@router.get("/{communication_id}", response_model=CommunicationOut, summary="One email's record")
async def get_communication(
    session: SessionDep, principal: CurrentPrincipal, communication_id: uuid.UUID
) -> Communication:
    query = scopes.communications(principal).where(col(Communication.id) == communication_id)
    communication: Communication = await get_one(session, query, "communication")
    if communication.parent_id is not None:
        await audit_staff_reads(session, principal, "communication", [communication.id])
    return communication
