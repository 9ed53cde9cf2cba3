"""Billing: a family's billing read from the mirror, and every change sent to the family's billing workflow (its
single writer), as an update when the caller needs the answer, so a refused change is a 4xx with its reason."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import stripe
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import CedarError, Conflict, NotFound
from api.principal import Principal
from api.repositories import billing as repository
from api.repositories import scopes
from api.repositories.audit import audit_write
from api.repositories.base import get_one
from api.schemas.billing import AccountBalance, StatementLine
from api.services import enrollments
from api.temporal_calls import bounded
from core.contracts.billing import (
    SIGNAL_STUDENT_STOPPED,
    UPDATE_ADD_CHARGE,
    UPDATE_CHANGE_CARD,
    UPDATE_REFUND,
    UPDATE_RENEW,
    CardChange,
    CardResult,
    ChargeRequest,
    ChargeResult,
    RefundRequest,
    RefundResult,
    RenewRequest,
    RenewResult,
    StudentStopped,
)
from core.settings import Settings
from core.stripe import create_stripe_client
from core.temporal import billing_workflow_id
from domain.ledger import Account
from models import BillingAccount, Invoice, JournalEntry, Parent, Payment, Subscription

# What a workflow's refusal becomes over HTTP; any other refusal is a 409.
_FAILURE_STATUS = {
    "NotFound": 404,
    "Conflict": 409,
    "RefundRefused": 409,
    "CardRejected": 422,
    "InvalidRequest": 422,
    # Billing's own fault (kept and flagged for the office), not the caller's.
    "InternalError": 500,
}


def failure_status(kind: str | None) -> int:
    """The HTTP status of billing's refusal of type ``kind``: Stripe's refusals (activities/stripe.py) are a bad
    gateway, not the caller's conflict."""
    if kind and kind.startswith("Stripe"):
        return 502
    return _FAILURE_STATUS.get(kind or "", 409)


_BILLING = "the family's billing"


@dataclass(frozen=True)
class FamilyBilling:
    account: BillingAccount
    balance_minor: int
    subscriptions: Sequence[Subscription]
    invoices: Sequence[Invoice]
    payments: Sequence[Payment]


@dataclass(frozen=True)
class Statement:
    lines: list[StatementLine]
    charges_minor: int = 0
    payments_minor: int = 0
    refunds_minor: int = 0
    balance_minor: int = 0


async def _family(session: AsyncSession, principal: Principal, parent_id: uuid.UUID) -> BillingAccount | None:
    """The family's billing account (None before billing started); another family's is a 404."""
    await get_one(session, scopes.parents(principal).where(col(Parent.id) == parent_id), "parent")
    return await repository.account_of(session, parent_id)


def update_id(name: str, parent_id: uuid.UUID, idempotency_key: uuid.UUID | None) -> str | None:
    """The update's id from the request's ``Idempotency-Key`` (scoped by family and update), so a retried request
    gets the first one's answer from Temporal; None without a key (Temporal picks one)."""
    return f"billing:{parent_id}:{name}:{idempotency_key}" if idempotency_key is not None else None


async def _update(
    client: Client,
    settings: Settings,
    parent_id: uuid.UUID,
    name: str,
    message: BaseModel,
    result: type,
    idempotency_key: uuid.UUID | None = None,
) -> Any:
    handle = client.get_workflow_handle(billing_workflow_id(parent_id))
    timeout = settings.temporal_update_timeout
    async with bounded(timeout, _BILLING):
        try:
            return await handle.execute_update(
                name, message, id=update_id(name, parent_id, idempotency_key), result_type=result, rpc_timeout=timeout
            )
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            kind = cause.type if isinstance(cause, ApplicationError) else None
            # The message alone: str() of an ApplicationError repeats its type before it.
            reason = cause.message if isinstance(cause, FailureError) else str(error)
            raise CedarError(failure_status(kind), "billing_refused", reason) from error
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise Conflict("billing has not started for this family") from error
            raise


async def family_billing(session: AsyncSession, principal: Principal, parent_id: uuid.UUID) -> FamilyBilling | None:
    """The family's subscriptions, invoices, payments and balance; None before billing started."""
    account = await _family(session, principal, parent_id)
    if account is None:
        return None
    subscriptions = await repository.subscriptions_of(session, account.id)
    invoices = await repository.invoices_of(session, account.id)
    payments = await repository.payments_of(session, account.id)
    balance = await repository.receivable_balance(session, account.id)
    return FamilyBilling(account, balance, subscriptions, invoices, payments)


async def change_card(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    parent_id: uuid.UUID,
    payment_method_id: str,
    idempotency_key: uuid.UUID | None = None,
) -> None:
    """The new card becomes the default at once and past-due invoices are retried with it; a decline is a 402."""
    if await _family(session, principal, parent_id) is None:
        raise Conflict("billing has not started for this family")
    change = CardChange(stripe_payment_method_id=payment_method_id)
    card: CardResult = await _update(
        temporal, settings, parent_id, UPDATE_CHANGE_CARD, change, CardResult, idempotency_key
    )
    if not card.attached:
        reason = card.decline_code or card.failure_code or "card_declined"
        raise CedarError(402, "card_declined", "the card was declined; try another card", {"payment_method_id": reason})


async def card_setup(
    session: AsyncSession, settings: Settings, principal: Principal, parent_id: uuid.UUID | None
) -> str | None:
    """A SetupIntent for the card form (Stripe Elements confirms it in the browser): its client secret.

    For the family's Stripe customer (``parent_id``; None before billing started, and a 404 for another family);
    or, with ``parent_id=None``, one with no customer, for a card that enrollment then checks and billing attaches.
    Creating it moves no money, so it is made here rather than by the family's billing workflow.
    """
    params: dict[str, Any] = {"usage": "off_session", "payment_method_types": ["card"]}
    if parent_id is not None:
        account = await _family(session, principal, parent_id)
        if account is None or not account.stripe_customer_id:
            return None
        params["customer"] = account.stripe_customer_id
    params["metadata"] = {"cedar_parent_id": str(parent_id or principal.parent_id or "")}
    try:
        intent = await create_stripe_client(settings).v1.setup_intents.create_async(
            params=params  # type: ignore[arg-type]
        )
    except stripe.StripeError as error:
        raise CedarError(503, "stripe_unavailable", "the card service is unavailable; try again in a moment") from error
    return str(intent.client_secret)


async def invoice_confirm_page(
    session: AsyncSession, settings: Settings, principal: Principal, parent_id: uuid.UUID, stripe_invoice_id: str
) -> str | None:
    """Stripe's hosted page where the parent confirms an open invoice's payment, looked up now (the link shows the
    customer's details, so it is never stored or carried in workflow histories); None when there is nothing to
    confirm there. Another family's invoice is a 404."""
    account = await _family(session, principal, parent_id)
    invoice = await repository.account_invoice(session, account.id, stripe_invoice_id) if account else None
    if invoice is None:
        raise NotFound("invoice")
    try:
        found = (await create_stripe_client(settings).v1.invoices.retrieve_async(stripe_invoice_id)).to_dict()
    except stripe.StripeError as error:
        raise CedarError(503, "stripe_unavailable", "the payment service is unavailable; try again") from error
    url = found.get("hosted_invoice_url")
    return str(url) if url and found.get("status") == "open" else None


@dataclass(frozen=True)
class Stopped:
    """What a stop set going: ``via`` "enrollment" (its workflow's cancel: its compensations cancel the lessons,
    give the place back and stop billing) or "billing" (the enrollment's workflow was gone: done here)."""

    subscription: Subscription
    via: str
    stopped: list[str]
    lessons_cancelled: int | None = None


async def stop_lessons(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    parent_id: uuid.UUID,
    subscription_id: uuid.UUID,
    reason: str,
) -> Stopped:
    """One stop flow: lessons, the teacher's place, billing and the enrollment together. A live enrollment is
    cancelled through its own workflow; without one, the same compensations run here and billing is told the last
    lesson that happens, so nothing after it is billed and unheld lessons already paid are given back."""
    account = await _family(session, principal, parent_id)
    sub = await repository.subscription(session, subscription_id)
    if account is None or sub is None or sub.billing_account_id != account.id:
        raise NotFound("subscription")
    if sub.status == "canceled":
        raise Conflict("these lessons are already stopped")
    enrollment = await enrollments.enrollment_row(session, sub.enrollment_id)
    if enrollment is not None and await enrollments.workflow_running(temporal, settings, enrollment):
        await enrollments.cancel(session, temporal, settings, principal, enrollment.id, reason)
        return Stopped(sub, "enrollment", ["lessons", "teacher_place", "billing", "enrollment"])
    stopped_parts = ["billing"]
    last_lesson_ends_at = datetime.now(UTC)
    cancelled = None
    if enrollment is not None:
        closed = await enrollments.close_without_workflow(session, principal, enrollment.id, reason)
        cancelled = closed.lessons_cancelled
        stopped_parts = ["lessons", *(["teacher_place"] if closed.place_freed else []), "billing"]
        stopped_parts += ["enrollment"] if closed.enrollment_cancelled else []
        last_lesson_ends_at = min(closed.last_lesson_ends_at or last_lesson_ends_at, last_lesson_ends_at)
    # The reason stays in the audit row; billing's history gets the row's id only.
    note_id = await audit_write(
        session, principal, "stop", "subscription", sub.id, after={"reason": reason, "via": "billing"}
    )
    stopped = StudentStopped(
        enrollment_id=sub.enrollment_id,
        parent_id=parent_id,
        student_id=sub.student_id,
        reason_note_id=note_id,
        last_lesson_ends_at=last_lesson_ends_at,
    )
    handle = temporal.get_workflow_handle(billing_workflow_id(parent_id))
    async with bounded(settings.temporal_query_timeout, _BILLING):
        await handle.signal(SIGNAL_STUDENT_STOPPED, stopped, rpc_timeout=settings.temporal_query_timeout)
    return Stopped(sub, "billing", stopped_parts, cancelled)


async def refund(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    payment_id: uuid.UUID,
    amount_minor: int | None,
    reason: str,
    idempotency_key: uuid.UUID | None = None,
) -> RefundResult:
    """A refund made once per ``Idempotency-Key``; the admin's reason stays in the database (the audit row and the
    refund's row), and billing's history gets the audit row's id only."""
    payment = await repository.payment(session, payment_id)
    account = await repository.account(session, payment.billing_account_id) if payment else None
    if payment is None or account is None:
        raise NotFound("payment")
    request_id = idempotency_key or uuid.uuid4()
    note_id = await repository.refund_note(session, request_id) or await audit_write(
        session,
        principal,
        "refund",
        "refund_request",
        request_id,
        after={"payment_id": str(payment_id), "amount_minor": amount_minor, "reason": reason},
    )
    request = RefundRequest(
        request_id=request_id, payment_id=payment_id, amount_minor=amount_minor, reason_note_id=note_id
    )
    result: RefundResult = await _update(
        temporal, settings, account.parent_id, UPDATE_REFUND, request, RefundResult, idempotency_key
    )
    await repository.set_refund_reason(session, result.refund_id, reason)
    return result


async def add_charge(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    parent_id: uuid.UUID,
    request: ChargeRequest,
    idempotency_key: uuid.UUID | None = None,
) -> ChargeResult:
    """A one-off charge or credit, made by the family's billing workflow once per request id."""
    account = await _family(session, principal, parent_id)
    if account is None:
        raise Conflict("billing has not started for this family")
    result: ChargeResult = await _update(
        temporal, settings, parent_id, UPDATE_ADD_CHARGE, request, ChargeResult, idempotency_key
    )
    after = {
        "parent_id": str(parent_id),
        "billing_account_id": str(account.id),
        "amount_minor": result.amount_minor,
        "description": request.description,
        "when": request.when,
        "stripe_invoice_item_id": result.stripe_invoice_item_id,
        "stripe_invoice_id": result.stripe_invoice_id,
        "status": result.status,
    }
    if not await repository.charge_audited(session, request.request_id):  # a retried request: audited once
        await audit_write(session, principal, request.kind, "charge", request.request_id, after=after)
    return result


async def trial_balance(session: AsyncSession) -> list[AccountBalance]:
    """Every ledger account's balance, by code."""
    totals: dict[str, AccountBalance] = {}
    for code, name, kind, amount in await repository.ledger_postings(session):
        line = totals.setdefault(code, AccountBalance(code=code, name=name, type=kind, balance_minor=0))
        line.balance_minor += amount or 0
    return sorted(totals.values(), key=lambda a: a.code)


async def statement(session: AsyncSession, principal: Principal, parent_id: uuid.UUID) -> Statement:
    """Every ledger entry of the family in order: charges, payments, refunds, write-offs, and what is owed."""
    account = await _family(session, principal, parent_id)
    if account is None:
        return Statement(lines=[])
    entries: dict[uuid.UUID, tuple[JournalEntry, int, int]] = {}
    for entry, code, amount in await repository.journal_of(session, account.id):
        _, owed, refunded = entries.get(entry.id, (entry, 0, 0))
        owed += amount if code == Account.ACCOUNTS_RECEIVABLE.value else 0
        refunded += amount if code == Account.REFUNDS.value else 0
        entries[entry.id] = (entry, owed, refunded)
    lines: list[StatementLine] = []
    charges = payments = refunds = balance = 0
    for entry, owed, refunded in entries.values():
        if entry.kind == "tuition_returned":
            continue  # moves a refund from revenue to deferred revenue: the family's line is the refund itself
        balance += owed
        charges += max(owed, 0)
        payments += -owed if entry.kind == "payment_received" else 0
        refunds += refunded
        if owed or refunded:
            lines.append(
                StatementLine(
                    occurred_at=entry.occurred_at,
                    kind=entry.kind,
                    memo=entry.memo,
                    amount_minor=owed,
                    balance_minor=balance,
                )
            )
    return Statement(lines, charges, payments, refunds, balance)


async def renew(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    subscription_id: uuid.UUID,
    idempotency_key: uuid.UUID | None = None,
) -> tuple[Subscription, RenewResult]:
    """Development only: the subscription's next invoice, created in Stripe and paid (refused in production)."""
    if settings.environment == "production":
        raise CedarError(403, "development_only", "renewals on demand exist only in development and tests")
    sub = await repository.subscription(session, subscription_id)
    account = await repository.account(session, sub.billing_account_id) if sub else None
    if sub is None or account is None or sub.stripe_subscription_id is None:
        raise NotFound("subscription")
    request = RenewRequest(stripe_subscription_id=sub.stripe_subscription_id)
    result: RenewResult = await _update(
        temporal, settings, account.parent_id, UPDATE_RENEW, request, RenewResult, idempotency_key
    )
    return sub, result
