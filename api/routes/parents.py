"""``/api/v1/parents``: families' contact profiles and consents; a parent sees and edits only their own."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Query, Response
from sqlalchemy import or_
from sqlmodel import col

from api.deps import IdentityDep, SessionDep
from api.pagination import NameSearch, Page, PageDep, SortOrder, fetch_page, page_of, sorting
from api.principal import AdminPrincipal, Principal, require_roles
from api.repositories import scopes
from api.repositories.accounts import deactivate_account, link_account, move_account_email
from api.repositories.audit import audit_staff_reads, audit_write, bind_request_id, snapshot
from api.repositories.base import apply_changes, delete_or_conflict, flush_or_conflict, forbidden_fields, get_one
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.school import ConsentChange, ConsentOut, ParentCreate, ParentOut, ParentUpdate
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
    query = scopes.parents(principal)
    if email is not None:
        query = query.where(col(Parent.email) == email.strip().lower())
    if name:
        query = query.where(
            or_(
                col(Parent.first_name).icontains(name, autoescape=True),
                col(Parent.last_name).icontains(name, autoescape=True),
            )
        )
    rows, total = await fetch_page(session, query, page, order)
    await audit_staff_reads(session, principal, "parent", (row.id for row in rows))
    return page_of(rows, total, page)


async def _parent(session: SessionDep, principal: Principal, parent_id: uuid.UUID) -> Parent:
    parent: Parent = await get_one(session, scopes.parents(principal).where(col(Parent.id) == parent_id), "parent")
    return parent


@router.get("/{parent_id}", response_model=ParentOut, summary="One parent's profile")
async def get_parent(session: SessionDep, principal: FamilyPrincipal, parent_id: uuid.UUID) -> Parent:
    parent = await _parent(session, principal, parent_id)
    await audit_staff_reads(session, principal, "parent", [parent.id])
    return parent


@router.post("", response_model=ParentOut, status_code=201, summary="Add a family (admin)")
async def create_parent(session: SessionDep, principal: AdminPrincipal, body: ParentCreate) -> Parent:
    email = body.email.lower()
    parent = Parent(
        **body.model_dump(exclude={"email"}), email=email, user_id=await link_account(session, email, Role.parent)
    )
    session.add(parent)
    await flush_or_conflict(session, f"a parent with the email {email} already exists")
    await audit_write(session, principal, "create", "parent", parent.id, after=snapshot(parent))
    return parent


@router.patch("/{parent_id}", response_model=ParentOut, summary="Change a parent's contact details")
async def update_parent(
    session: SessionDep, principal: FamilyPrincipal, identity: IdentityDep, parent_id: uuid.UUID, body: ParentUpdate
) -> Parent:
    changes = body.changes()
    parent = await _parent(session, principal, parent_id)
    if principal.role == Role.parent and changes.keys() & ParentUpdate.staff_only:
        raise forbidden_fields(changes.keys() & ParentUpdate.staff_only)
    if "email" in changes:
        changes["email"] = changes["email"].lower()
        await move_account_email(session, identity, parent.user_id, changes["email"])
    before = snapshot(parent)
    apply_changes(parent, changes)
    await flush_or_conflict(session, "the parent could not be updated: another family has that email")
    await audit_write(session, principal, "update", "parent", parent.id, before=before, after=snapshot(parent))
    return parent


@router.delete("/{parent_id}", status_code=204, summary="Delete a family with no children or billing records")
async def delete_parent(
    session: SessionDep, principal: AdminPrincipal, identity: IdentityDep, parent_id: uuid.UUID
) -> Response:
    parent = await _parent(session, principal, parent_id)
    before = snapshot(parent)
    await delete_or_conflict(session, parent, "the family still has students, enrollments or billing records")
    # The users row stays (audit rows name it as actor), deactivated: no sign-in, no refresh, no live token.
    await deactivate_account(session, identity, parent.user_id)
    await audit_write(session, principal, "delete", "parent", parent_id, before=before)
    return Response(status_code=204)


async def _consents(session: SessionDep, principal: Principal, parent_id: uuid.UUID) -> list[Consent]:
    query = (
        scopes.consents(principal)
        .where(col(Consent.parent_id) == parent_id)
        .order_by(col(Consent.granted_at), col(Consent.id))
    )
    return list((await session.scalars(query)).all())


@router.get("/{parent_id}/consents", response_model=list[ConsentOut], summary="A family's consents, oldest first")
async def list_consents(session: SessionDep, principal: FamilyPrincipal, parent_id: uuid.UUID) -> list[Consent]:
    await _parent(session, principal, parent_id)
    consents = await _consents(session, principal, parent_id)
    await audit_staff_reads(session, principal, "consent", (consent.id for consent in consents))
    return consents


@router.post("/{parent_id}/consents", response_model=list[ConsentOut], summary="Grant or withdraw a consent (PIPEDA)")
async def change_consent(
    session: SessionDep, principal: FamilyPrincipal, parent_id: uuid.UUID, body: ConsentChange
) -> list[Consent]:
    await _parent(session, principal, parent_id)
    open_grants = [
        consent
        for consent in await _consents(session, principal, parent_id)
        if consent.kind == body.kind and consent.granted and consent.withdrawn_at is None
    ]
    if body.granted and not open_grants:
        consent = Consent(parent_id=parent_id, kind=body.kind, granted=True, source="api")
        session.add(consent)
        await session.flush()
        await audit_write(session, principal, "create", "consent", consent.id, after=snapshot(consent))
    if not body.granted:
        now = datetime.now(UTC)
        for consent in open_grants:
            before = snapshot(consent)
            consent.withdrawn_at = now
            await audit_write(
                session, principal, "update", "consent", consent.id, before=before, after=snapshot(consent)
            )
        await session.flush()
    return await _consents(session, principal, parent_id)
