"""Families' profiles, login accounts and consents; a parent sees and edits only their own (the principal's scope:
another family is not found) and not the fields only staff change. Staff reads are audited."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.pagination import PageParams, SortOrder
from api.principal import Principal
from api.repositories import parents as repository
from api.repositories.accounts import deactivate_account, link_account, move_account_email
from api.repositories.audit import audit_staff_reads, audit_write, snapshot
from api.repositories.base import (
    add_or_conflict,
    apply_changes,
    delete_or_conflict,
    flush_or_conflict,
    forbidden_fields,
)
from api.schemas.school import ConsentChange, ParentCreate, ParentUpdate
from core.identity import IdentityService
from models import Consent, Parent, Role


async def page(
    session: AsyncSession, principal: Principal, page: PageParams, order: SortOrder, email: str | None, name: str | None
) -> tuple[Sequence[Any], int]:
    rows, total = await repository.list_parents(session, principal, page, order, email, name)
    await audit_staff_reads(session, principal, "parent", (row.id for row in rows))
    return rows, total


async def get(session: AsyncSession, principal: Principal, parent_id: uuid.UUID) -> Parent:
    parent = await repository.parent(session, principal, parent_id)
    await audit_staff_reads(session, principal, "parent", [parent.id])
    return parent


async def create(session: AsyncSession, principal: Principal, body: ParentCreate) -> Parent:
    """The parent and their login account, without a password (they set one through the reset link)."""
    email = body.email.lower()
    parent = Parent(
        **body.model_dump(exclude={"email"}), email=email, user_id=await link_account(session, email, Role.parent)
    )
    await add_or_conflict(session, parent, f"a parent with the email {email} already exists")
    await audit_write(session, principal, "create", "parent", parent.id, after=snapshot(parent))
    return parent


async def update(
    session: AsyncSession,
    principal: Principal,
    identity: IdentityService,
    parent_id: uuid.UUID,
    changes: dict[str, Any],
) -> Parent:
    """A new email (staff only) moves the login account with it."""
    parent = await repository.parent(session, principal, parent_id)
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


async def delete(session: AsyncSession, principal: Principal, identity: IdentityService, parent_id: uuid.UUID) -> None:
    parent = await repository.parent(session, principal, parent_id)
    before = snapshot(parent)
    await delete_or_conflict(session, parent, "the family still has students, enrollments or billing records")
    # The users row stays (audit rows name it as actor), deactivated: no sign-in, no refresh, no live token.
    await deactivate_account(session, identity, parent.user_id)
    await audit_write(session, principal, "delete", "parent", parent_id, before=before)


async def consents(session: AsyncSession, principal: Principal, parent_id: uuid.UUID) -> list[Consent]:
    await repository.parent(session, principal, parent_id)
    found = await repository.consents(session, principal, parent_id)
    await audit_staff_reads(session, principal, "consent", (consent.id for consent in found))
    return found


async def change_consent(
    session: AsyncSession, principal: Principal, parent_id: uuid.UUID, body: ConsentChange
) -> list[Consent]:
    """Granting opens a grant unless one is open; withdrawing closes every open grant of that kind."""
    await repository.parent(session, principal, parent_id)
    open_grants = [
        consent
        for consent in await repository.consents(session, principal, parent_id)
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
    return await repository.consents(session, principal, parent_id)
