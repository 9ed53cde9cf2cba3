"""The messages billing's activities, workflows and webhook endpoint exchange (ids and amounts only, no names)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

# --- Stripe snapshots: what the adapter reads back from Stripe, normalised across Stripe and localstripe ---


class ChargeSnapshot(BaseModel):
    id: str
    status: str  # succeeded | failed | pending
    amount_minor: int
    amount_refunded_minor: int = 0
    fee_minor: int = 0
    payment_intent_id: str | None = None
    failure_code: str | None = None
    decline_code: str | None = None
    created_at: datetime | None = None


class InvoiceSnapshot(BaseModel):
    id: str
    customer_id: str
    subscription_id: str | None
    status: str  # Stripe's: draft | open | paid | uncollectible | void
    amount_due_minor: int
    amount_paid_minor: int
    currency: str
    period_start: datetime | None = None
    period_end: datetime | None = None
    charge: ChargeSnapshot | None = None
    attempt_count: int = 0
    # The latest attempt waits for the parent's bank confirmation (its payment intent requires action), and the
    # page where they can give it (Stripe's hosted invoice page; localstripe has none).
    confirmation_needed: bool = False
    hosted_invoice_url: str | None = None


class SubscriptionSnapshot(BaseModel):
    id: str
    customer_id: str
    status: str
    plan_id: str
    trial_end: datetime | None = None
    current_period_end: datetime | None = None
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = None


class PaymentFailure(BaseModel):
    """Why a payment attempt failed, when we learnt it from the attempt itself rather than a charge."""

    attempt: int
    failure_code: str | None = None
    decline_code: str | None = None
    outcome_unknown: bool = False
    # The bank wants the parent to confirm the payment (3-D Secure): where they can (Stripe's hosted invoice page;
    # None with localstripe, which has none). failure_code is then "authentication_required".
    confirm_url: str | None = None


# --- adapter inputs and results ---


class EnsureCustomer(BaseModel):
    parent_id: uuid.UUID


class CustomerRef(BaseModel):
    billing_account_id: uuid.UUID
    stripe_customer_id: str


class AttachCard(BaseModel):
    billing_account_id: uuid.UUID
    stripe_customer_id: str
    payment_method_id: str


class CardResult(BaseModel):
    attached: bool
    failure_code: str | None = None
    decline_code: str | None = None


class EnsurePlan(BaseModel):
    plan_id: str
    instrument: str
    lesson_minutes: int
    interval: str
    amount_minor: int
    currency: str


class CreateSubscription(BaseModel):
    billing_account_id: uuid.UUID
    stripe_customer_id: str
    enrollment_id: uuid.UUID
    student_id: uuid.UUID
    plan_id: str
    interval: str
    amount_minor: int
    discount_percent: int
    currency: str
    trial_end: datetime | None


class SubscriptionRef(BaseModel):
    stripe_subscription_id: str


class CancelSubscription(BaseModel):
    stripe_subscription_id: str
    # None: the school's setting (stop_lessons_mode) decides.
    immediately: bool | None = None


class CreateRenewal(BaseModel):
    stripe_customer_id: str
    stripe_subscription_id: str
    period: int = Field(ge=1)


class InvoiceRef(BaseModel):
    stripe_invoice_id: str


class ChargeRef(BaseModel):
    stripe_charge_id: str


class PayInvoice(BaseModel):
    stripe_invoice_id: str
    attempt: int = Field(ge=1)


class PayOutcome(BaseModel):
    status: str  # paid | failed | pending | closed (void/uncollectible: nothing to collect)
    failure: PaymentFailure | None = None


class CreateRefund(BaseModel):
    request_id: uuid.UUID
    stripe_charge_id: str
    amount_minor: int = Field(gt=0)


class RefundSnapshot(BaseModel):
    id: str
    charge_id: str
    amount_minor: int


# --- database-side inputs and results ---


class QuoteRequest(BaseModel):
    billing_account_id: uuid.UUID
    student_id: uuid.UUID
    instrument: str
    lesson_minutes: int
    billing_interval: str


class Quote(BaseModel):
    plan_id: str
    amount_minor: int
    base_amount_minor: int
    discount_percent: int
    interval: str
    currency: str


class ApplyInvoice(BaseModel):
    invoice: InvoiceSnapshot
    failure: PaymentFailure | None = None


class InvoiceApplied(BaseModel):
    invoice_id: uuid.UUID | None  # None: not a customer of ours
    billing_account_id: uuid.UUID | None = None
    status: str = ""
    amount_due_minor: int = 0
    amount_paid_minor: int = 0
    attempt_count: int = 0
    newly_paid: bool = False
    paid_at: datetime | None = None
    payment_id: uuid.UUID | None = None
    new_failure: PaymentFailure | None = None
    first_failed_at: datetime | None = None


class RecordRefund(BaseModel):
    payment_id: uuid.UUID
    refund: RefundSnapshot
    reason: str = ""


class ChargeRefunds(BaseModel):
    """Every refund Stripe holds for one charge, however it was made (Cedar, the Stripe dashboard, Stripe's API)."""

    stripe_charge_id: str
    refunds: list[RefundSnapshot]


class WriteOffInvoice(BaseModel):
    stripe_invoice_id: str
    reason: str


class EventRef(BaseModel):
    stripe_event_id: str


class EventOutcome(BaseModel):
    stripe_event_id: str
    status: str  # processed | ignored | failed
    error: str | None = None


class NotifyDunning(BaseModel):
    parent_id: uuid.UUID
    signal: str
    payload: dict[str, Any]


class SendReceipt(BaseModel):
    parent_id: uuid.UUID
    payment_id: uuid.UUID


SIGNAL_STRIPE_EVENT = "stripe_event"  # its signal into the family's billing workflow


class StripeEventReceived(BaseModel):
    """Webhook/catch-up → billing workflow: a verified event is in the inbox; act on it once."""

    stripe_event_id: str
    type: str
    object_id: str | None = None  # the event's object (invoice, subscription, charge…)
    invoice_id: str | None = None  # the invoice it concerns, when it concerns one
    charge_id: str | None = None  # the charge it concerns (a charge or refund event)
