"""A family's billing as the database mirrors it: account, subscriptions, invoices, payments and ledger."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Row, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.ledger import Account
from models import (
    AuditLog,
    BillingAccount,
    Invoice,
    JournalEntry,
    LedgerAccount,
    Payment,
    Posting,
    Refund,
    Subscription,
)


async def account_of(session: AsyncSession, parent_id: uuid.UUID) -> BillingAccount | None:
    account: BillingAccount | None = await session.scalar(
        select(BillingAccount).where(col(BillingAccount.parent_id) == parent_id)
    )
    return account


async def charge_audited(session: AsyncSession, request_id: uuid.UUID) -> bool:
    """Whether the one-off charge (or credit) request has its audit row already."""
    query = select(col(AuditLog.id)).where(
        col(AuditLog.entity_type) == "charge", col(AuditLog.entity_id) == str(request_id)
    )
    return await session.scalar(query.limit(1)) is not None


async def refund_note(session: AsyncSession, request_id: uuid.UUID) -> uuid.UUID | None:
    """The audit row of a refund request (its reason), when a first attempt of the request wrote it."""
    query = select(col(AuditLog.id)).where(
        col(AuditLog.entity_type) == "refund_request", col(AuditLog.entity_id) == str(request_id)
    )
    found: uuid.UUID | None = await session.scalar(query.limit(1))
    return found


async def set_refund_reason(session: AsyncSession, refund_id: uuid.UUID, reason: str) -> None:
    """The reason the admin gave, on the refund's row (the billing workflow recorded it without)."""
    refund = await session.get(Refund, refund_id)
    if refund is not None and not refund.reason:
        refund.reason = reason[:500]


async def account_invoice(session: AsyncSession, account_id: uuid.UUID, stripe_invoice_id: str) -> Invoice | None:
    invoice: Invoice | None = await session.scalar(
        select(Invoice).where(
            col(Invoice.billing_account_id) == account_id, col(Invoice.stripe_invoice_id) == stripe_invoice_id
        )
    )
    return invoice


async def account(session: AsyncSession, account_id: uuid.UUID) -> BillingAccount | None:
    return await session.get(BillingAccount, account_id)


async def subscription(session: AsyncSession, subscription_id: uuid.UUID) -> Subscription | None:
    return await session.get(Subscription, subscription_id)


async def payment(session: AsyncSession, payment_id: uuid.UUID) -> Payment | None:
    return await session.get(Payment, payment_id)


async def subscriptions_of(session: AsyncSession, account_id: uuid.UUID) -> Sequence[Subscription]:
    query = (
        select(Subscription)
        .where(col(Subscription.billing_account_id) == account_id)
        .order_by(col(Subscription.created_at))
    )
    return (await session.scalars(query)).all()


async def invoices_of(session: AsyncSession, account_id: uuid.UUID) -> Sequence[Invoice]:
    query = (
        select(Invoice).where(col(Invoice.billing_account_id) == account_id).order_by(col(Invoice.created_at).desc())
    )
    return (await session.scalars(query)).all()


async def payments_of(session: AsyncSession, account_id: uuid.UUID) -> Sequence[Payment]:
    query = (
        select(Payment).where(col(Payment.billing_account_id) == account_id).order_by(col(Payment.created_at).desc())
    )
    return (await session.scalars(query)).all()


async def receivable_balance(session: AsyncSession, billing_account_id: uuid.UUID) -> int:
    """What the family owes: its accounts-receivable balance in the ledger."""
    total = await session.scalar(
        select(func.coalesce(func.sum(col(Posting.amount_minor)), 0))
        .join(JournalEntry, col(JournalEntry.id) == col(Posting.entry_id))
        .where(
            col(JournalEntry.billing_account_id) == billing_account_id,
            col(Posting.account_code) == Account.ACCOUNTS_RECEIVABLE.value,
        )
    )
    return int(total or 0)


async def ledger_postings(session: AsyncSession) -> Sequence[Row[str, str, str, int | None]]:
    """Every ledger account (code, name, type) with each of its postings' amounts (None for an unused account)."""
    rows = await session.execute(
        select(
            col(LedgerAccount.code), col(LedgerAccount.name), col(LedgerAccount.type), col(Posting.amount_minor)
        ).outerjoin(Posting, col(Posting.account_code) == col(LedgerAccount.code))
    )
    return rows.all()


async def journal_of(session: AsyncSession, account_id: uuid.UUID) -> Sequence[Row[JournalEntry, str, int]]:
    """The family's journal entries in order, one row per posting: (entry, account code, amount)."""
    rows = await session.execute(
        select(JournalEntry, col(Posting.account_code), col(Posting.amount_minor))
        .join(Posting, col(Posting.entry_id) == col(JournalEntry.id))
        .where(col(JournalEntry.billing_account_id) == account_id)
        .order_by(col(JournalEntry.created_at), col(JournalEntry.id))
    )
    return rows.all()
