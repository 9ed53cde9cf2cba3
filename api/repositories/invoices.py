"""Invoices and payments mirrored from Stripe, as a principal may see them (a parent: their family's)."""

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
from models import Invoice, Payment


async def list_invoices(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    order: SortOrder,
    status: str | None,
    billing_account_id: uuid.UUID | None,
) -> tuple[Sequence[Any], int]:
    query = scopes.invoices(principal)
    if status is not None:
        query = query.where(col(Invoice.status) == status)
    if billing_account_id is not None:
        query = query.where(col(Invoice.billing_account_id) == billing_account_id)
    return await fetch_page(session, query, page, order)


async def invoice(session: AsyncSession, principal: Principal, invoice_id: uuid.UUID) -> Invoice:
    found: Invoice = await get_one(session, scopes.invoices(principal).where(col(Invoice.id) == invoice_id), "invoice")
    return found


async def list_payments(
    session: AsyncSession,
    principal: Principal,
    page: PageParams,
    order: SortOrder,
    status: str | None,
    invoice_id: uuid.UUID | None,
    billing_account_id: uuid.UUID | None,
) -> tuple[Sequence[Any], int]:
    query = scopes.payments(principal)
    for column, value in (
        (col(Payment.status), status),
        (col(Payment.invoice_id), invoice_id),
        (col(Payment.billing_account_id), billing_account_id),
    ):
        if value is not None:
            query = query.where(column == value)
    return await fetch_page(session, query, page, order)


async def payment(session: AsyncSession, principal: Principal, payment_id: uuid.UUID) -> Payment:
    found: Payment = await get_one(session, scopes.payments(principal).where(col(Payment.id) == payment_id), "payment")
    return found
