"""Parents' rows and consents, as a principal may see them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.pagination import PageParams, SortOrder, fetch_page
from api.principal import Principal
from api.repositories import scopes
from api.repositories.base import get_one
from models import Consent, Parent


async def list_parents(
    session: AsyncSession, principal: Principal, page: PageParams, order: SortOrder, email: str | None, name: str | None
) -> tuple[Sequence[Any], int]:
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
    return await fetch_page(session, query, page, order)


async def parent(session: AsyncSession, principal: Principal, parent_id: uuid.UUID) -> Parent:
    """The parent, if the principal may see them (an admin: anyone; a parent: themself); else 404."""
    found: Parent = await get_one(session, scopes.parents(principal).where(col(Parent.id) == parent_id), "parent")
    return found


async def consents(session: AsyncSession, principal: Principal, parent_id: uuid.UUID) -> list[Consent]:
    """The family's consents, oldest first."""
    query = (
        scopes.consents(principal)
        .where(col(Consent.parent_id) == parent_id)
        .order_by(col(Consent.granted_at), col(Consent.id))
    )
    return list((await session.scalars(query)).all())
