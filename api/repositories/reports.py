"""The owner's reports' SQL: the ledger's revenue and receivable postings with what ties them to an enrollment,
the students active in each semester, and the open make-up credits. Admins only (no scoping)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.ledger import Account, AccountType
from domain.makeups import CreditStatus
from models import (
    Enrollment,
    Invoice,
    JournalEntry,
    LedgerAccount,
    Lesson,
    MakeupCredit,
    Payment,
    Posting,
    Refund,
    Semester,
    Subscription,
    Teacher,
)

REVENUE_TYPES = (AccountType.REVENUE.value, AccountType.CONTRA_REVENUE.value)
# Lessons that make a student active in a semester: booked or held, not demos, not cancelled.
INACTIVE_LESSON_STATUSES = ("cancelled",)


async def revenue_postings(session: AsyncSession, since: datetime, before: datetime) -> list[Any]:
    """Postings to revenue and contra-revenue accounts of entries that occurred in ``[since, before)``:
    ``idempotency_key``, ``occurred_at``, ``type`` and ``amount_minor``."""
    rows = await session.execute(
        select(
            col(JournalEntry.idempotency_key),
            col(JournalEntry.occurred_at),
            col(LedgerAccount.type),
            col(Posting.amount_minor),
        )
        .join(JournalEntry, col(JournalEntry.id) == col(Posting.entry_id))
        .join(LedgerAccount, col(LedgerAccount.code) == col(Posting.account_code))
        .where(
            col(LedgerAccount.type).in_(REVENUE_TYPES),
            col(JournalEntry.occurred_at) >= since,
            col(JournalEntry.occurred_at) < before,
        )
    )
    return list(rows.all())


async def lesson_enrollments(
    session: AsyncSession, lesson_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, tuple[str, uuid.UUID | None]]:
    """Each lesson's enrollment's instrument and teacher (lessons of no enrollment are left out)."""
    if not lesson_ids:
        return {}
    rows = await session.execute(
        select(col(Lesson.id), col(Enrollment.instrument), col(Enrollment.teacher_id))
        .join(Enrollment, col(Enrollment.id) == col(Lesson.enrollment_id))
        .where(col(Lesson.id).in_(lesson_ids))
    )
    return {row.id: (row.instrument, row.teacher_id) for row in rows}


async def refund_enrollments(
    session: AsyncSession, stripe_refund_ids: Collection[str]
) -> dict[str, tuple[str, uuid.UUID | None]]:
    """Each refund's enrollment (refund → payment → invoice → subscription → enrollment): instrument and teacher;
    a refund of a payment for no subscription (a one-off charge) is left out."""
    if not stripe_refund_ids:
        return {}
    rows = await session.execute(
        select(col(Refund.stripe_refund_id), col(Enrollment.instrument), col(Enrollment.teacher_id))
        .join(Payment, col(Payment.id) == col(Refund.payment_id))
        .join(Invoice, col(Invoice.id) == col(Payment.invoice_id))
        .join(Subscription, col(Subscription.id) == col(Invoice.subscription_id))
        .join(Enrollment, col(Enrollment.id) == col(Subscription.enrollment_id))
        .where(col(Refund.stripe_refund_id).in_(stripe_refund_ids))
    )
    return {row.stripe_refund_id: (row.instrument, row.teacher_id) for row in rows}


async def teacher_names(session: AsyncSession, ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(col(Teacher.id), col(Teacher.display_name)).where(col(Teacher.id).in_(ids)))
    return {row.id: row.display_name for row in rows}


async def receivable_postings(session: AsyncSession, before: datetime) -> list[Any]:
    """Postings to accounts receivable of entries before ``before``: ``idempotency_key``, ``occurred_at``,
    ``amount_minor``."""
    rows = await session.execute(
        select(col(JournalEntry.idempotency_key), col(JournalEntry.occurred_at), col(Posting.amount_minor))
        .join(JournalEntry, col(JournalEntry.id) == col(Posting.entry_id))
        .where(col(Posting.account_code) == Account.ACCOUNTS_RECEIVABLE.value, col(JournalEntry.occurred_at) < before)
    )
    return list(rows.all())


async def charge_invoices(session: AsyncSession, stripe_charge_ids: Collection[str]) -> dict[str, str]:
    """Stripe charge id → the Stripe id of the invoice it paid."""
    if not stripe_charge_ids:
        return {}
    rows = await session.execute(
        select(col(Payment.stripe_charge_id), col(Invoice.stripe_invoice_id))
        .join(Invoice, col(Invoice.id) == col(Payment.invoice_id))
        .where(col(Payment.stripe_charge_id).in_(stripe_charge_ids))
    )
    return {row.stripe_charge_id: row.stripe_invoice_id for row in rows}


async def semesters_starting(session: AsyncSession, start: date, end: date) -> list[Semester]:
    rows = await session.scalars(
        select(Semester)
        .where(col(Semester.start_date) >= start, col(Semester.start_date) < end)
        .order_by(col(Semester.start_date), col(Semester.name))
    )
    return list(rows)


async def active_students(
    session: AsyncSession, semesters: Collection[uuid.UUID], timezone: str
) -> dict[uuid.UUID, set[uuid.UUID]]:
    """Per semester: the students with a lesson (not a demo, not cancelled) from its start_date to its end_date,
    both included (the school's local days)."""
    if not semesters:
        return {}
    local_day = cast(func.timezone(timezone, col(Lesson.starts_at)), Date)
    rows = await session.execute(
        select(col(Semester.id), col(Lesson.student_id))
        .join(Lesson, (local_day >= col(Semester.start_date)) & (local_day <= col(Semester.end_date)))
        .where(
            col(Semester.id).in_(semesters),
            col(Lesson.kind) != "demo",
            col(Lesson.status).not_in(INACTIVE_LESSON_STATUSES),
        )
        .distinct()
    )
    out: dict[uuid.UUID, set[uuid.UUID]] = {}
    for semester_id, student_id in rows:
        out.setdefault(semester_id, set()).add(student_id)
    return out


async def open_credits(session: AsyncSession) -> list[Any]:
    """Make-up credits still available: ``expires_at`` and ``lesson_minutes``."""
    rows = await session.execute(
        select(col(MakeupCredit.expires_at), col(MakeupCredit.lesson_minutes)).where(
            col(MakeupCredit.status) == CreditStatus.available
        )
    )
    return list(rows.all())
