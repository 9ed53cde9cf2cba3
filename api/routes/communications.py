"""``/api/v1/communications``: the emails Cedar sent (read only); a parent or teacher sees their own."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query

from api.deps import SessionDep
from api.pagination import Page, PageDep, SortOrder, page_of, sorting
from api.principal import CurrentPrincipal
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.records import CommunicationOut
from api.services import communications as service
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
    rows, total = await service.page(session, principal, page, order, parent_id, enrollment_id, status, template)
    return page_of(rows, total, page)


@router.get("/{communication_id}", response_model=CommunicationOut, summary="One email's record")
async def get_communication(
    session: SessionDep, principal: CurrentPrincipal, communication_id: uuid.UUID
) -> Communication:
    return await service.get(session, principal, communication_id)
