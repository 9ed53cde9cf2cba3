"""PIPEDA access and erasure for one family: everything Cedar holds about it, and forgetting it.

Erasure blanks personal fields and keeps money records (invoices, payments, the ledger), which tax law
obliges the school to retain; those rows point at the family only by id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, String, delete, func, or_, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from api.errors import Conflict, NotFound
from api.repositories.accounts import deactivate_account
from core.identity import IdentityService
from core.temporal import dunning_workflow_id, makeup_credit_workflow_id
from domain.enrollment_rules import CLOSED_STATES, EnrollmentState
from domain.privacy import REDACTED, is_redacted, redact_event_payload, redact_snapshot
from models import (
    AuditLog,
    BillingAccount,
    CalendarFeed,
    Communication,
    Consent,
    Enrollment,
    ErasureReport,
    Invoice,
    Lesson,
    LessonStatus,
    MakeupCredit,
    Parent,
    Payment,
    ReenrollmentOffer,
    Refund,
    StripeEvent,
    Student,
    Subscription,
    User,
)

ERASED = "Erased"
LIVE_ENROLLMENT_STATES = [s.value for s in EnrollmentState if s not in CLOSED_STATES]


def _rows(items: list[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json") if isinstance(item, SQLModel) else item for item in items]


async def _all(session: AsyncSession, statement: Any) -> list[Any]:
    return list((await session.scalars(statement)).all())


async def family_export(session: AsyncSession, parent_id: uuid.UUID) -> dict[str, Any]:
    parent = await session.get(Parent, parent_id)
    if parent is None:
        raise NotFound("parent")
    students = await _all(session, select(Student).where(col(Student.parent_id) == parent_id))
    student_ids = [s.id for s in students]
    account = await session.scalar(select(BillingAccount).where(col(BillingAccount.parent_id) == parent_id))
    account_ids = [account.id] if account else []
    user = await session.get(User, parent.user_id) if parent.user_id else None
    return {
        "exported_at": datetime.now(UTC).isoformat(),
        "parent": parent.model_dump(mode="json"),
        "account": {"email": user.email, "role": user.role, "created_at": user.created_at.isoformat()}
        if user
        else None,
        "students": _rows(students),
        "enrollments": _rows(await _all(session, select(Enrollment).where(col(Enrollment.parent_id) == parent_id))),
        "lessons": _rows(await _all(session, select(Lesson).where(col(Lesson.student_id).in_(student_ids)))),
        "consents": _rows(await _all(session, select(Consent).where(col(Consent.parent_id) == parent_id))),
        "communications": _rows(
            await _all(session, select(Communication).where(col(Communication.parent_id) == parent_id))
        ),
        "invoices": _rows(await _all(session, select(Invoice).where(col(Invoice.billing_account_id).in_(account_ids)))),
        "payments": _rows(await _all(session, select(Payment).where(col(Payment.billing_account_id).in_(account_ids)))),
        "audit_log": _rows(
            await _all(
                session,
                select(AuditLog)
                .where(col(AuditLog.entity_id).in_([str(parent_id), *map(str, student_ids)]))
                .order_by(col(AuditLog.occurred_at)),
            )
        ),
    }


async def erase_family(session: AsyncSession, identity: IdentityService, parent_id: uuid.UUID) -> dict[str, int]:
    """Blanks the family's personal data in place; refuses while a child still has a live enrollment."""
    parent = await session.get(Parent, parent_id, with_for_update=True)
    if parent is None:
        raise NotFound("parent")
    if parent.erased_at is not None:
        return {"students": 0, "enrollments": 0, "communications": 0, "lessons_cancelled": 0}
    live = await session.scalar(
        select(func.count())
        .select_from(Enrollment)
        .where(col(Enrollment.parent_id) == parent_id, col(Enrollment.state).in_(LIVE_ENROLLMENT_STATES))
    )
    if live:
        raise Conflict("cancel the family's live enrollments before erasing it", {"parent_id": f"{live} live"})

    now = datetime.now(UTC)
    erased_email = f"erased-{parent.id}@erased.invalid"
    students = await _all(session, select(Student).where(col(Student.parent_id) == parent_id))
    for student in students:
        student.first_name = student.last_name = ERASED
        # The birth year stays for the school's age statistics; the day and month identify a child.
        student.date_of_birth = date(student.date_of_birth.year, 1, 1)
        student.is_active = False
    # An UPDATE answers with a CursorResult, whose rowcount the counts below need; execute() is typed as Result.
    cancelled = cast(
        CursorResult[Any],
        await session.execute(
            update(Lesson)
            .where(
                col(Lesson.student_id).in_([s.id for s in students]),
                col(Lesson.starts_at) > now,
                col(Lesson.status) == LessonStatus.scheduled,
            )
            .values(status=LessonStatus.cancelled, updated_at=now)
        ),
    )
    enrollments = cast(
        CursorResult[Any],
        await session.execute(
            update(Enrollment)
            .where(col(Enrollment.parent_id) == parent_id)
            .values(application={"erased_at": now.isoformat()}, updated_at=now)
        ),
    )
    communications = cast(
        CursorResult[Any],
        await session.execute(
            update(Communication).where(col(Communication.parent_id) == parent_id).values(recipient=erased_email)
        ),
    )
    if parent.user_id is not None:
        # Deactivated first, while the provider still knows it by its address and external id.
        await deactivate_account(session, identity, parent.user_id)
        user = await session.get(User, parent.user_id)
        if user is not None:
            # The provider's id stays until the login account is removed there (the erasure's next steps).
            user.email, user.password_hash = erased_email, None
    parent.first_name = parent.last_name = ERASED
    parent.email, parent.phone, parent.erased_at = erased_email, "", now
    return {
        "students": len(students),
        "enrollments": enrollments.rowcount,
        "communications": communications.rowcount,
        "lessons_cancelled": cancelled.rowcount,
    }


# --- erasure that reaches every copy (the erasure workflow's steps) ---------------------------------------------

# Audit rows kept past their age: money records' (the tax law's retention) and erasures' (the proof of erasure).
LEGAL_HOLD_ENTITY_TYPES = ("charge", "invoice", "payment", "refund", "billing_account", "journal_entry")
LEGAL_HOLD_ACTIONS = ("erase", "erase.requested")


async def family_workflow_ids(session: AsyncSession, parent_id: uuid.UUID) -> list[str]:
    """Every workflow id the family's rows name: enrollments, re-enrollment offers, make-up credits, dunning, then
    billing last (the others signal billing while they run)."""
    enrollments = await _all(
        session,
        select(col(Enrollment.workflow_id))
        .where(col(Enrollment.parent_id) == parent_id)
        .order_by(col(Enrollment.created_at)),
    )
    offers = await _all(
        session, select(col(ReenrollmentOffer.workflow_id)).where(col(ReenrollmentOffer.parent_id) == parent_id)
    )
    credits = await _all(session, select(col(MakeupCredit.id)).where(col(MakeupCredit.parent_id) == parent_id))
    account = await session.scalar(select(BillingAccount).where(col(BillingAccount.parent_id) == parent_id))
    ids = [*enrollments, *offers, *map(makeup_credit_workflow_id, credits), dunning_workflow_id(parent_id)]
    if account is not None:
        ids.append(account.workflow_id)
    return list(dict.fromkeys(ids))


async def family_entity_ids(session: AsyncSession, parent_id: uuid.UUID) -> list[str]:
    """The ids of every row of the family an audit row may name as its entity."""
    parent = await session.get(Parent, parent_id)
    students = await _all(session, select(col(Student.id)).where(col(Student.parent_id) == parent_id))
    account_ids = await _all(session, select(col(BillingAccount.id)).where(col(BillingAccount.parent_id) == parent_id))
    payment_ids = await _all(session, select(col(Payment.id)).where(col(Payment.billing_account_id).in_(account_ids)))
    ids: list[Any] = [parent_id, *students, *account_ids, *payment_ids]
    if parent is not None and parent.user_id is not None:
        ids.append(parent.user_id)
    for statement in (
        select(col(Enrollment.id)).where(col(Enrollment.parent_id) == parent_id),
        select(col(Lesson.id)).where(col(Lesson.student_id).in_(students)),
        select(col(Invoice.id)).where(col(Invoice.billing_account_id).in_(account_ids)),
        select(col(Subscription.id)).where(col(Subscription.billing_account_id).in_(account_ids)),
        select(col(Refund.id)).where(col(Refund.payment_id).in_(payment_ids)),
        select(col(MakeupCredit.id)).where(col(MakeupCredit.parent_id) == parent_id),
        select(col(ReenrollmentOffer.id)).where(col(ReenrollmentOffer.parent_id) == parent_id),
    ):
        ids.extend(await _all(session, statement))
    return [str(i) for i in ids]


async def blank_family_free_text(session: AsyncSession, parent_id: uuid.UUID) -> int:
    """Blanks what people typed or wrote about the family outside its personal fields (lesson notes, make-up
    reasons, email subjects and errors) and revokes its calendar feed; how many rows changed."""
    now = datetime.now(UTC)
    students = select(col(Student.id)).where(col(Student.parent_id) == parent_id)
    changed = 0
    for statement in (
        update(Lesson).where(col(Lesson.student_id).in_(students), col(Lesson.notes) != "").values(notes=""),
        update(MakeupCredit)
        .where(col(MakeupCredit.parent_id) == parent_id, col(MakeupCredit.reason) != "")
        .values(reason=""),
        update(Communication)
        .where(
            col(Communication.parent_id) == parent_id,
            or_(col(Communication.subject) != "", col(Communication.error).is_not(None)),
        )
        .values(subject="", error=None),
        update(CalendarFeed)
        .where(col(CalendarFeed.parent_id) == parent_id, col(CalendarFeed.revoked_at).is_(None))
        .values(revoked_at=now),
    ):
        changed += cast(CursorResult[Any], await session.execute(statement)).rowcount
    return changed


async def redact_family_audit(session: AsyncSession, parent_id: uuid.UUID) -> int:
    """Blanks the before/after snapshots of the family's audit rows; who did what to which row, when, stays.
    The erasure's own rows hold counts only and stay as they are."""
    rows = await _all(
        session,
        select(AuditLog)
        .where(
            col(AuditLog.entity_id).in_(await family_entity_ids(session, parent_id)),
            col(AuditLog.action).not_in(LEGAL_HOLD_ACTIONS),
            or_(col(AuditLog.before).is_not(None), col(AuditLog.after).is_not(None)),
        )
        .with_for_update(),
    )
    redacted = 0
    for row in rows:
        before, after = redact_snapshot(row.before), redact_snapshot(row.after)
        if (before, after) != (row.before, row.after):
            row.before, row.after = before, after
            redacted += 1
    return redacted


async def family_customer_id(session: AsyncSession, parent_id: uuid.UUID) -> str | None:
    return await session.scalar(
        select(col(BillingAccount.stripe_customer_id)).where(col(BillingAccount.parent_id) == parent_id)
    )


async def redact_customer_events(session: AsyncSession, customer_id: str) -> int:
    """Redacts the stored webhook events of one Stripe customer (by its id on the row or in the event's object)."""
    rows = await _all(
        session,
        select(StripeEvent)
        .where(
            or_(
                col(StripeEvent.stripe_customer_id) == customer_id,
                sql_cast(col(StripeEvent.payload), String).contains(f'"{customer_id}"'),
            )
        )
        .with_for_update(),
    )
    redacted = 0
    for row in rows:
        if is_redacted(row.payload) and row.error is None:
            continue
        row.payload, row.error = redact_event_payload(row.payload), None
        redacted += 1
    return redacted


async def family_user(session: AsyncSession, parent_id: uuid.UUID) -> User | None:
    parent = await session.get(Parent, parent_id)
    if parent is None or parent.user_id is None:
        return None
    return await session.get(User, parent.user_id, with_for_update=True)


async def erasure_report(session: AsyncSession, parent_id: uuid.UUID) -> ErasureReport | None:
    return await session.get(ErasureReport, parent_id)


# --- retention --------------------------------------------------------------------------------------------------


async def closed_families(session: AsyncSession, inactive_since: datetime, limit: int) -> list[uuid.UUID]:
    """Families not erased yet, with no live enrollment and no open invoice, created and last changed before
    ``inactive_since``."""
    live = select(col(Enrollment.parent_id)).where(
        or_(col(Enrollment.state).in_(LIVE_ENROLLMENT_STATES), col(Enrollment.updated_at) >= inactive_since)
    )
    owing = (
        select(col(BillingAccount.parent_id))
        .join(Invoice, col(Invoice.billing_account_id) == col(BillingAccount.id))
        .where(col(Invoice.status) == "open")
    )
    return await _all(
        session,
        select(col(Parent.id))
        .where(
            col(Parent.erased_at).is_(None),
            col(Parent.created_at) < inactive_since,
            col(Parent.id).not_in(live),
            col(Parent.id).not_in(owing),
        )
        .order_by(col(Parent.created_at))
        .limit(limit),
    )


async def delete_old_audit_rows(session: AsyncSession, before: datetime) -> int:
    deleted = cast(
        CursorResult[Any],
        await session.execute(
            delete(AuditLog).where(
                col(AuditLog.occurred_at) < before,
                col(AuditLog.entity_type).not_in(LEGAL_HOLD_ENTITY_TYPES),
                col(AuditLog.action).not_in(LEGAL_HOLD_ACTIONS),
            )
        ),
    )
    return deleted.rowcount


async def blank_old_webhook_payloads(session: AsyncSession, before: datetime) -> int:
    """Redacts the payloads of webhook events received before ``before`` and already handled (never one still to
    process)."""
    rows = await _all(
        session,
        select(StripeEvent)
        .where(
            col(StripeEvent.received_at) < before,
            col(StripeEvent.status) != "received",
            func.coalesce(col(StripeEvent.payload)[REDACTED].astext, "") != "true",
        )
        .with_for_update(skip_locked=True),
    )
    for row in rows:
        row.payload, row.error = redact_event_payload(row.payload), None
    return len(rows)
