"""``/api/v1/billing``: a family's subscriptions, invoices, payments and balance; card updates, stopping lessons,
refunds, the trial balance and family statements; and, in development only, renewals on demand.

Reads come from the database mirror; every change goes to the family's billing workflow (its single writer),
as an update when the caller needs the answer, so a refused change is a 4xx with the workflow's reason.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Header, status
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import col
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError, FailureError
from temporalio.service import RPCError, RPCStatusCode

from activities.billing import receivable_balance
from api.access import ROUTE_ACCESS
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import CedarError, Conflict, NotFound
from api.principal import AdminPrincipal, Principal, require_roles
from api.repositories import scopes
from api.repositories.base import get_one
from api.routing import IndexedRouter
from api.schemas.billing import (
    AccountBalance,
    CardOut,
    CardUpdate,
    FamilyBillingOut,
    InvoiceOut,
    PaymentOut,
    RefundCreate,
    RefundOut,
    RenewalOut,
    StatementLine,
    StatementOut,
    StopAccepted,
    StopLessons,
    SubscriptionOut,
    TrialBalanceOut,
)
from api.temporal_calls import bounded
from core.contracts.billing import (
    SIGNAL_STUDENT_STOPPED,
    UPDATE_CHANGE_CARD,
    UPDATE_REFUND,
    UPDATE_RENEW,
    CardChange,
    CardResult,
    RefundRequest,
    RefundResult,
    RenewRequest,
    RenewResult,
    StudentStopped,
)
from core.settings import Settings
from core.temporal import billing_workflow_id
from domain.ledger import Account
from models import BillingAccount, Invoice, JournalEntry, LedgerAccount, Parent, Payment, Posting, Role, Subscription

router = IndexedRouter(prefix="/api/v1/billing", tags=["billing"])
FamilyPrincipal = Annotated[Principal, Depends(require_roles(Role.admin, Role.parent))]
_FAMILY, _ADMIN = frozenset({"admin", "parent"}), frozenset({"admin"})
ROUTE_ACCESS.update(
    {
        ("GET", "/api/v1/billing/families/{parent_id}"): _FAMILY,
        ("PUT", "/api/v1/billing/families/{parent_id}/card"): _FAMILY,
        ("POST", "/api/v1/billing/families/{parent_id}/subscriptions/{subscription_id}/stop"): _FAMILY,
        ("GET", "/api/v1/billing/families/{parent_id}/statement"): _ADMIN,
        ("POST", "/api/v1/billing/payments/{payment_id}/refunds"): _ADMIN,
        ("GET", "/api/v1/billing/ledger/trial-balance"): _ADMIN,
        ("POST", "/api/v1/billing/subscriptions/{subscription_id}/renewals"): _ADMIN,
    }
)
# What a workflow's refusal becomes over HTTP.
_FAILURE_STATUS = {"NotFound": 404, "Conflict": 409, "RefundRefused": 409, "CardRejected": 422}
_BILLING = "the family's billing"


async def _family(session: SessionDep, principal: Principal, parent_id: uuid.UUID) -> BillingAccount | None:
    """The family's billing account (None before billing started); another family's is a 404."""
    await get_one(session, scopes.parents(principal).where(col(Parent.id) == parent_id), "parent")
    account: BillingAccount | None = await session.scalar(
        select(BillingAccount).where(col(BillingAccount.parent_id) == parent_id)
    )
    return account


async def _update(
    client: TemporalDep, settings: Settings, parent_id: uuid.UUID, name: str, message: BaseModel, result: type
) -> Any:
    handle = client.get_workflow_handle(billing_workflow_id(parent_id))
    timeout = settings.temporal_update_timeout
    async with bounded(timeout, _BILLING):
        try:
            return await handle.execute_update(name, message, result_type=result, rpc_timeout=timeout)
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            kind = cause.type if isinstance(cause, ApplicationError) else None
            # The message alone: str() of an ApplicationError repeats its type before it.
            reason = cause.message if isinstance(cause, FailureError) else str(error)
            raise CedarError(_FAILURE_STATUS.get(kind or "", 409), "billing_refused", reason) from error
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise Conflict("billing has not started for this family") from error
            raise


@router.get("/families/{parent_id}", response_model=FamilyBillingOut, summary="A family's billing")
async def family_billing(parent_id: uuid.UUID, session: SessionDep, principal: FamilyPrincipal) -> FamilyBillingOut:
    account = await _family(session, principal, parent_id)
    if account is None:
        return FamilyBillingOut(
            parent_id=parent_id,
            billing_account_id=None,
            dunning_state="clear",
            has_card=False,
            balance_minor=0,
            subscriptions=[],
            invoices=[],
            payments=[],
        )
    subscriptions = await session.scalars(
        select(Subscription)
        .where(col(Subscription.billing_account_id) == account.id)
        .order_by(col(Subscription.created_at))
    )
    invoices = await session.scalars(
        select(Invoice).where(col(Invoice.billing_account_id) == account.id).order_by(col(Invoice.created_at).desc())
    )
    payments = await session.scalars(
        select(Payment).where(col(Payment.billing_account_id) == account.id).order_by(col(Payment.created_at).desc())
    )
    return FamilyBillingOut(
        parent_id=parent_id,
        billing_account_id=account.id,
        dunning_state=account.dunning_state,
        has_card=account.default_payment_method_id is not None,
        balance_minor=await receivable_balance(session, account.id),
        subscriptions=[SubscriptionOut.model_validate(s) for s in subscriptions],
        invoices=[InvoiceOut.model_validate(i) for i in invoices],
        payments=[PaymentOut.model_validate(p) for p in payments],
    )


@router.put("/families/{parent_id}/card", response_model=CardOut, summary="Replace the family's card")
async def update_card(
    parent_id: uuid.UUID,
    body: CardUpdate,
    session: SessionDep,
    settings: SettingsDep,
    principal: FamilyPrincipal,
    temporal: TemporalDep,
) -> CardOut:
    """The new card becomes the default at once and past-due invoices are retried with it."""
    if await _family(session, principal, parent_id) is None:
        raise Conflict("billing has not started for this family")
    change = CardChange(stripe_payment_method_id=body.payment_method_id)
    card: CardResult = await _update(temporal, settings, parent_id, UPDATE_CHANGE_CARD, change, CardResult)
    if not card.attached:
        reason = card.decline_code or card.failure_code or "card_declined"
        raise CedarError(402, "card_declined", "the card was declined; try another card", {"payment_method_id": reason})
    return CardOut(attached=True, payment_method_id=body.payment_method_id)


@router.post(
    "/families/{parent_id}/subscriptions/{subscription_id}/stop",
    response_model=StopAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    summary="Stop a student's lessons (billing)",
)
async def stop_lessons(
    parent_id: uuid.UUID,
    subscription_id: uuid.UUID,
    body: StopLessons,
    session: SessionDep,
    settings: SettingsDep,
    principal: FamilyPrincipal,
    temporal: TemporalDep,
) -> StopAccepted:
    account = await _family(session, principal, parent_id)
    sub = await session.get(Subscription, subscription_id)
    if account is None or sub is None or sub.billing_account_id != account.id:
        raise NotFound("subscription")
    if sub.status == "canceled":
        raise Conflict("these lessons are already stopped")
    stopped = StudentStopped(
        enrollment_id=sub.enrollment_id, parent_id=parent_id, student_id=sub.student_id, reason=body.reason
    )
    handle = temporal.get_workflow_handle(billing_workflow_id(parent_id))
    async with bounded(settings.temporal_query_timeout, _BILLING):
        await handle.signal(SIGNAL_STUDENT_STOPPED, stopped, rpc_timeout=settings.temporal_query_timeout)
    return StopAccepted(subscription_id=sub.id, status="stopping")


@router.post(
    "/payments/{payment_id}/refunds",
    response_model=RefundOut,
    status_code=status.HTTP_201_CREATED,
    summary="Refund a payment, fully or partly (admin)",
)
async def refund_payment(
    payment_id: uuid.UUID,
    body: RefundCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    temporal: TemporalDep,
    idempotency_key: Annotated[uuid.UUID | None, Header(alias="Idempotency-Key")] = None,
) -> RefundOut:
    """Send an ``Idempotency-Key`` (a UUID) to make a retried request refund once."""
    payment = await session.get(Payment, payment_id)
    account = await session.get(BillingAccount, payment.billing_account_id) if payment else None
    if payment is None or account is None:
        raise NotFound("payment")
    request = RefundRequest(
        request_id=idempotency_key or uuid.uuid4(),
        payment_id=payment_id,
        amount_minor=body.amount_minor,
        reason=body.reason,
    )
    result: RefundResult = await _update(temporal, settings, account.parent_id, UPDATE_REFUND, request, RefundResult)
    return RefundOut(
        refund_id=result.refund_id,
        stripe_refund_id=result.stripe_refund_id,
        payment_id=payment_id,
        amount_minor=result.amount_minor,
    )


@router.get("/ledger/trial-balance", response_model=TrialBalanceOut, summary="Trial balance (admin)")
async def trial_balance(session: SessionDep, principal: AdminPrincipal) -> TrialBalanceOut:
    rows = await session.execute(
        select(
            col(LedgerAccount.code), col(LedgerAccount.name), col(LedgerAccount.type), col(Posting.amount_minor)
        ).outerjoin(Posting, col(Posting.account_code) == col(LedgerAccount.code))
    )
    totals: dict[str, AccountBalance] = {}
    for code, name, kind, amount in rows.all():
        line = totals.setdefault(code, AccountBalance(code=code, name=name, type=kind, balance_minor=0))
        line.balance_minor += amount or 0
    accounts = sorted(totals.values(), key=lambda a: a.code)
    return TrialBalanceOut(accounts=accounts, total_minor=sum(a.balance_minor for a in accounts))


@router.get("/families/{parent_id}/statement", response_model=StatementOut, summary="Family statement (admin)")
async def family_statement(parent_id: uuid.UUID, session: SessionDep, principal: AdminPrincipal) -> StatementOut:
    """Every ledger entry of the family in order: charges, payments, refunds, write-offs, and what is owed."""
    account = await _family(session, principal, parent_id)
    lines: list[StatementLine] = []
    charges = payments = refunds = balance = 0
    if account is not None:
        rows = await session.execute(
            select(JournalEntry, col(Posting.account_code), col(Posting.amount_minor))
            .join(Posting, col(Posting.entry_id) == col(JournalEntry.id))
            .where(col(JournalEntry.billing_account_id) == account.id)
            .order_by(col(JournalEntry.created_at), col(JournalEntry.id))
        )
        entries: dict[uuid.UUID, tuple[JournalEntry, int, int]] = {}
        for entry, code, amount in rows.all():
            _, owed, refunded = entries.get(entry.id, (entry, 0, 0))
            owed += amount if code == Account.ACCOUNTS_RECEIVABLE.value else 0
            refunded += amount if code == Account.REFUNDS.value else 0
            entries[entry.id] = (entry, owed, refunded)
        for entry, owed, refunded in entries.values():
            balance += owed
            charges += max(owed, 0)
            payments += -owed if entry.kind == "payment_received" else 0
            refunds += refunded
            shown = owed or refunded
            if shown:
                lines.append(
                    StatementLine(
                        occurred_at=entry.occurred_at,
                        kind=entry.kind,
                        memo=entry.memo,
                        amount_minor=owed,
                        balance_minor=balance,
                    )
                )
    return StatementOut(
        parent_id=parent_id,
        lines=lines,
        charges_minor=charges,
        payments_minor=payments,
        refunds_minor=refunds,
        balance_minor=balance,
    )


@router.post(
    "/subscriptions/{subscription_id}/renewals",
    response_model=RenewalOut,
    status_code=status.HTTP_201_CREATED,
    summary="Development only: bill the next period of a subscription now",
)
async def renew_subscription(
    subscription_id: uuid.UUID,
    session: SessionDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    temporal: TemporalDep,
) -> RenewalOut:
    """localstripe has no clock and never renews: this creates the subscription's next invoice in Stripe and pays
    it, and Stripe's events come back through the webhook as in production. Refused in production."""
    if settings.environment == "production":
        raise CedarError(403, "development_only", "renewals on demand exist only in development and tests")
    sub = await session.get(Subscription, subscription_id)
    account = await session.get(BillingAccount, sub.billing_account_id) if sub else None
    if sub is None or account is None or sub.stripe_subscription_id is None:
        raise NotFound("subscription")
    renew = RenewRequest(stripe_subscription_id=sub.stripe_subscription_id)
    result: RenewResult = await _update(temporal, settings, account.parent_id, UPDATE_RENEW, renew, RenewResult)
    return RenewalOut(
        subscription_id=sub.id, stripe_invoice_id=result.stripe_invoice_id, period=result.period, status=result.status
    )
