"""Emails' records, read as the principal's scope allows; a staff read of an email to a family is audited."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.pagination import PageParams, SortOrder
from api.principal import Principal
from api.repositories import communications as repository
from api.repositories.audit import audit_staff_reads
from models import Communication, CommunicationStatus


async def page(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    order: SortOrder,
    parent_id: uuid.UUID | None,
    enrollment_id: uuid.UUID | None,
    status: CommunicationStatus | None,
    template: str | None,
) -> tuple[Sequence[Any], int]:
    rows, total = await repository.list_communications(
        session, principal, page, order, parent_id, enrollment_id, status, template
    )
    await audit_staff_reads(session, principal, "communication", (row.id for row in rows if row.parent_id))
    return rows, total


async def get(session: AsyncSession, principal: Principal, communication_id: uuid.UUID) -> Communication:
    communication = await repository.communication(session, principal, communication_id)
    if communication.parent_id is not None:
        await audit_staff_reads(session, principal, "communication", [communication.id])
    return communication
