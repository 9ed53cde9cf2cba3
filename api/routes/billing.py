"""``/api/v1/billing``: a family's subscriptions, invoices, payments and balance; card updates, stopping lessons,
refunds, the trial balance and family statements; and, in development only, renewals on demand.

Reads come from the database mirror; every change goes to the family's billing workflow (its single writer)
through ``api/services/billing.py``, so a refused change is a 4xx with the workflow's reason.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Header, status

from api.access import ROUTE_ACCESS
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.principal import AdminPrincipal, Principal, require_roles
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.billing import (
    CardOut,
    CardUpdate,
    ChargeCreate,
    ChargeOut,
    FamilyBillingOut,
    InvoiceOut,
    PaymentOut,
    RefundCreate,
    RefundOut,
    RenewalOut,
    StatementOut,
    StopAccepted,
    StopLessons,
    SubscriptionOut,
    TrialBalanceOut,
)
from api.services import billing as service
from core.contracts.billing import ChargeRequest
from models import Role

router = IndexedRouter(prefix="/api/v1/billing", tags=["billing"], dependencies=[Depends(bind_request_id)])
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


@router.get("/families/{parent_id}", response_model=FamilyBillingOut, summary="A family's billing")
async def family_billing(parent_id: uuid.UUID, session: SessionDep, principal: FamilyPrincipal) -> FamilyBillingOut:
    billing = await service.family_billing(session, principal, parent_id)
    if billing is None:
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
    account = billing.account
    return FamilyBillingOut(
        parent_id=parent_id,
        billing_account_id=account.id,
        dunning_state=account.dunning_state,
        has_card=account.default_payment_method_id is not None,
        balance_minor=billing.balance_minor,
        subscriptions=[SubscriptionOut.model_validate(s) for s in billing.subscriptions],
        invoices=[InvoiceOut.model_validate(i) for i in billing.invoices],
        payments=[PaymentOut.model_validate(p) for p in billing.payments],
    )


@router.put("/families/{parent_id}/card", response_model=CardOut, summary="Replace the family's card")
async def update_card(
    parent_id: uuid.UUID,
    body: CardUpdate,
    session: SessionDep,
    settings: SettingsDep,
    principal: FamilyPrincipal,
    temporal: TemporalDep,
    idempotency_key: Annotated[uuid.UUID | None, Header(alias="Idempotency-Key")] = None,
) -> CardOut:
    """The new card becomes the default at once and past-due invoices are retried with it. Send an
    ``Idempotency-Key`` (a UUID) so that a retried request gets the first one's answer."""
    await service.change_card(
        session, temporal, settings, principal, parent_id, body.payment_method_id, idempotency_key
    )
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
    """Stops the student's lessons, the teacher's place, billing and the enrollment together: through the
    enrollment's cancel while its workflow runs, else here; nothing is billed after the last lesson that happens
    and lessons already paid that will not happen are refunded by the tuition rule."""
    done = await service.stop_lessons(session, temporal, settings, principal, parent_id, subscription_id, body.reason)
    return StopAccepted(
        subscription_id=done.subscription.id,
        status="stopping",
        enrollment_id=done.subscription.enrollment_id,
        via=done.via,  # type: ignore[arg-type]
        stopped=done.stopped,
        lessons_cancelled=done.lessons_cancelled,
    )


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
    """Send an ``Idempotency-Key`` (a UUID) to make a retried request refund once. The reason is kept in the
    audit log and on the refund's row."""
    result = await service.refund(
        session, temporal, settings, principal, payment_id, body.amount_minor, body.reason, idempotency_key
    )
    return RefundOut(
        refund_id=result.refund_id,
        stripe_refund_id=result.stripe_refund_id,
        payment_id=payment_id,
        amount_minor=result.amount_minor,
    )


@router.post(
    "/families/{parent_id}/charges",
    response_model=ChargeOut,
    status_code=status.HTTP_201_CREATED,
    summary="A one-off charge or credit for the family (admin)",
)
async def add_charge(
    parent_id: uuid.UUID,
    body: ChargeCreate,
    session: SessionDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    temporal: TemporalDep,
    idempotency_key: Annotated[uuid.UUID | None, Header(alias="Idempotency-Key")] = None,
) -> ChargeOut:
    """On the family's next invoice (`next_invoice`), or on its own invoice paid now (`now`, charges only). Send an
    ``Idempotency-Key`` (a UUID) to make a retried request charge once."""
    request = ChargeRequest(
        request_id=idempotency_key or uuid.uuid4(),
        amount_minor=body.amount_minor,
        description=body.description,
        kind=body.kind,
        when=body.when,
    )
    result = await service.add_charge(session, temporal, settings, principal, parent_id, request, idempotency_key)
    return ChargeOut(
        request_id=result.request_id,
        stripe_invoice_item_id=result.stripe_invoice_item_id,
        amount_minor=result.amount_minor,
        stripe_invoice_id=result.stripe_invoice_id,
        status=result.status,
    )


@router.get("/ledger/trial-balance", response_model=TrialBalanceOut, summary="Trial balance (admin)")
async def trial_balance(session: SessionDep, principal: AdminPrincipal) -> TrialBalanceOut:
    accounts = await service.trial_balance(session)
    return TrialBalanceOut(accounts=accounts, total_minor=sum(a.balance_minor for a in accounts))


@router.get("/families/{parent_id}/statement", response_model=StatementOut, summary="Family statement (admin)")
async def family_statement(parent_id: uuid.UUID, session: SessionDep, principal: AdminPrincipal) -> StatementOut:
    """Every ledger entry of the family in order: charges, payments, refunds, write-offs, and what is owed."""
    found = await service.statement(session, principal, parent_id)
    return StatementOut(
        parent_id=parent_id,
        lines=found.lines,
        charges_minor=found.charges_minor,
        payments_minor=found.payments_minor,
        refunds_minor=found.refunds_minor,
        balance_minor=found.balance_minor,
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
    idempotency_key: Annotated[uuid.UUID | None, Header(alias="Idempotency-Key")] = None,
) -> RenewalOut:
    """localstripe has no clock and never renews: this creates the subscription's next invoice in Stripe and pays
    it, and Stripe's events come back through the webhook as in production. Refused in production. Send an
    ``Idempotency-Key`` (a UUID) so that a retried request gets the first one's answer."""
    sub, result = await service.renew(session, temporal, settings, subscription_id, idempotency_key)
    return RenewalOut(
        subscription_id=sub.id,
        stripe_invoice_id=result.stripe_invoice_id,
        period=result.period,
        status=result.status,
        period_key=result.period_key,
        amount_minor=result.amount_minor,
    )
