"""``/api/v1/parents``: families' contact profiles and consents; a parent sees and edits only their own."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query, Response

from api.deps import IdentityDep, SessionDep
from api.pagination import NameSearch, Page, PageDep, SortOrder, page_of, sorting
from api.principal import AdminPrincipal, Principal, require_roles
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.school import ConsentChange, ConsentOut, ParentCreate, ParentOut, ParentUpdate
from api.services import parents as service
from models import Consent, Parent, Role

router = IndexedRouter(
    prefix="/api/v1/parents",
    tags=["parents"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 409, 422),
)

ParentSort = Annotated[
    SortOrder,
    Depends(
        sorting(
            {"last_name": Parent.last_name, "email": Parent.email, "created_at": Parent.created_at},
            "last_name",
        )
    ),
]
FamilyPrincipal = Annotated[Principal, Depends(require_roles(Role.admin, Role.parent))]


@router.get("", response_model=Page[ParentOut], summary="List parents (admin)")
async def list_parents(
    session: SessionDep,
    principal: AdminPrincipal,
    page: PageDep,
    order: ParentSort,
    email: Annotated[str | None, Query(max_length=254)] = None,
    name: NameSearch = None,
) -> dict[str, Any]:
    rows, total = await service.page(session, principal, page, order, email, name)
    return page_of(rows, total, page)


@router.get("/{parent_id}", response_model=ParentOut, summary="One parent's profile")
async def get_parent(session: SessionDep, principal: FamilyPrincipal, parent_id: uuid.UUID) -> Parent:
    return await service.get(session, principal, parent_id)


@router.post("", response_model=ParentOut, status_code=201, summary="Add a family (admin)")
async def create_parent(session: SessionDep, principal: AdminPrincipal, body: ParentCreate) -> Parent:
    return await service.create(session, principal, body)


@router.patch("/{parent_id}", response_model=ParentOut, summary="Change a parent's contact details")
async def update_parent(
    session: SessionDep, principal: FamilyPrincipal, identity: IdentityDep, parent_id: uuid.UUID, body: ParentUpdate
) -> Parent:
    return await service.update(session, principal, identity, parent_id, body.changes())


@router.delete("/{parent_id}", status_code=204, summary="Delete a family with no children or billing records")
async def delete_parent(
    session: SessionDep, principal: AdminPrincipal, identity: IdentityDep, parent_id: uuid.UUID
) -> Response:
    await service.delete(session, principal, identity, parent_id)
    return Response(status_code=204)


@router.get("/{parent_id}/consents", response_model=list[ConsentOut], summary="A family's consents, oldest first")
async def list_consents(session: SessionDep, principal: FamilyPrincipal, parent_id: uuid.UUID) -> list[Consent]:
    return await service.consents(session, principal, parent_id)


@router.post("/{parent_id}/consents", response_model=list[ConsentOut], summary="Grant or withdraw a consent (PIPEDA)")
async def change_consent(
    session: SessionDep, principal: FamilyPrincipal, parent_id: uuid.UUID, body: ConsentChange
) -> list[Consent]:
    return await service.change_consent(session, principal, parent_id, body)
