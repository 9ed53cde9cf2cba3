"""Invoices and payments, read as the principal's scope allows; every staff read is audited."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.pagination import PageParams, SortOrder
from api.principal import Principal
from api.repositories import invoices as repository
from api.repositories.audit import audit_staff_reads
from models import Invoice, Payment


async def invoice_page(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    order: SortOrder,
    status: str | None,
    billing_account_id: uuid.UUID | None,
) -> tuple[Sequence[Any], int]:
    rows, total = await repository.list_invoices(session, principal, page, order, status, billing_account_id)
    await audit_staff_reads(session, principal, "invoice", (row.id for row in rows))
    return rows, total


async def invoice(session: AsyncSession, principal: Principal, invoice_id: uuid.UUID) -> Invoice:
    found = await repository.invoice(session, principal, invoice_id)
    await audit_staff_reads(session, principal, "invoice", [found.id])
    return found


async def payment_page(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    order: SortOrder,
    status: str | None,
    invoice_id: uuid.UUID | None,
    billing_account_id: uuid.UUID | None,
) -> tuple[Sequence[Any], int]:
    rows, total = await repository.list_payments(
        session, principal, page, order, status, invoice_id, billing_account_id
    )
    await audit_staff_reads(session, principal, "payment", (row.id for row in rows))
    return rows, total


async def payment(session: AsyncSession, principal: Principal, payment_id: uuid.UUID) -> Payment:
    found = await repository.payment(session, principal, payment_id)
    await audit_staff_reads(session, principal, "payment", [found.id])
    return found
