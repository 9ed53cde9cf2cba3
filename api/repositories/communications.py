"""The emails Cedar sent, as a principal may see them (a parent: to their family; a teacher: about them)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.pagination import PageParams, SortOrder, fetch_page
from api.principal import Principal
from api.repositories import scopes
from api.repositories.base import get_one
from models import Communication, CommunicationStatus


async def list_communications(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    order: SortOrder,
    parent_id: uuid.UUID | None,
    enrollment_id: uuid.UUID | None,
    status: CommunicationStatus | None,
    template: str | None,
) -> tuple[Sequence[Any], int]:
    query = scopes.communications(principal)
    for column, value in (
        (col(Communication.parent_id), parent_id),
        (col(Communication.enrollment_id), enrollment_id),
        (col(Communication.status), status),
        (col(Communication.template), template),
    ):
        if value is not None:
            query = query.where(column == value)
    return await fetch_page(session, query, page, order)


async def communication(session: AsyncSession, principal: Principal, communication_id: uuid.UUID) -> Communication:
    query = scopes.communications(principal).where(col(Communication.id) == communication_id)
    found: Communication = await get_one(session, query, "communication")
    return found
