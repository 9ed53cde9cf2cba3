"""Money mirrored from Stripe: billing accounts, subscriptions, invoices, payments, refunds, events."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from domain.dunning import DunningState
from models.base import created_at_field, id_field, json_field, one_of, tz_field


class BillingAccount(SQLModel, table=True):
    """A family's billing identity: its Stripe customer and dunning state (one per parent)."""

    __tablename__ = "billing_accounts"
    __table_args__ = (one_of("dunning_state", DunningState, "ck_billing_accounts_dunning_state"),)

    id: uuid.UUID = id_field()
    parent_id: uuid.UUID = Field(foreign_key="parents.id", unique=True)
    stripe_customer_id: str | None = Field(default=None, max_length=255, unique=True)
    default_payment_method_id: str | None = Field(default=None, max_length=255)
    workflow_id: str = Field(max_length=100, unique=True)
    dunning_state: str = Field(default=DunningState.CLEAR, max_length=16)
    dunning_paused: bool = False
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class Subscription(SQLModel, table=True):
    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint("amount_minor >= 0", name="ck_subscriptions_amount"),
        CheckConstraint("discount_percent BETWEEN 0 AND 100", name="ck_subscriptions_discount"),
    )

    id: uuid.UUID = id_field()
    billing_account_id: uuid.UUID = Field(foreign_key="billing_accounts.id", index=True)
    student_id: uuid.UUID = Field(foreign_key="students.id", index=True)
    enrollment_id: uuid.UUID = Field(foreign_key="enrollments.id", unique=True)
    stripe_subscription_id: str | None = Field(default=None, max_length=255, unique=True)
    stripe_plan_id: str = Field(max_length=255)
    status: str = Field(max_length=32)  # Stripe's: trialing, active, past_due, canceled, unpaid, incomplete…
    interval: str = Field(max_length=8)
    amount_minor: int
    discount_percent: int = 0
    currency: str = Field(default="cad", max_length=3)
    trial_end: datetime | None = tz_field(nullable=True)
    current_period_end: datetime | None = tz_field(nullable=True)
    cancel_at_period_end: bool = False
    canceled_at: datetime | None = tz_field(nullable=True)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class Invoice(SQLModel, table=True):
    __tablename__ = "invoices"
    __table_args__ = (CheckConstraint("amount_due_minor >= 0 AND amount_paid_minor >= 0", name="ck_invoices_amounts"),)

    id: uuid.UUID = id_field()
    billing_account_id: uuid.UUID = Field(foreign_key="billing_accounts.id", index=True)
    subscription_id: uuid.UUID | None = Field(default=None, foreign_key="subscriptions.id", index=True)
    stripe_invoice_id: str = Field(max_length=255, unique=True)
    status: str = Field(max_length=32)  # draft, open, paid, uncollectible, void
    amount_due_minor: int
    amount_paid_minor: int = 0
    currency: str = Field(default="cad", max_length=3)
    period_start: datetime | None = tz_field(nullable=True)
    period_end: datetime | None = tz_field(nullable=True)
    # The earliest unpaid invoice's first failure drives dunning (as Kill Bill does).
    first_failed_at: datetime | None = tz_field(nullable=True)
    attempt_count: int = 0
    paid_at: datetime | None = tz_field(nullable=True)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class Payment(SQLModel, table=True):
    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("amount_minor > 0 AND fee_minor >= 0", name="ck_payments_amounts"),)

    id: uuid.UUID = id_field()
    billing_account_id: uuid.UUID = Field(foreign_key="billing_accounts.id", index=True)
    invoice_id: uuid.UUID | None = Field(default=None, foreign_key="invoices.id", index=True)
    stripe_charge_id: str | None = Field(default=None, max_length=255, unique=True)
    stripe_payment_intent_id: str | None = Field(default=None, max_length=255, unique=True)
    status: str = Field(max_length=32)  # succeeded, failed, refunded, partially_refunded
    amount_minor: int
    fee_minor: int = 0
    amount_refunded_minor: int = 0
    currency: str = Field(default="cad", max_length=3)
    failure_code: str | None = Field(default=None, max_length=64)
    decline_code: str | None = Field(default=None, max_length=64)
    receipt_sent_at: datetime | None = tz_field(nullable=True)
    created_at: datetime = created_at_field()


class Refund(SQLModel, table=True):
    __tablename__ = "refunds"
    __table_args__ = (CheckConstraint("amount_minor > 0", name="ck_refunds_amount"),)

    id: uuid.UUID = id_field()
    payment_id: uuid.UUID = Field(foreign_key="payments.id", index=True)
    stripe_refund_id: str = Field(max_length=255, unique=True)
    amount_minor: int
    reason: str = Field(default="", max_length=500)
    created_at: datetime = created_at_field()


class StripeEventStatus(StrEnum):
    received = "received"
    processed = "processed"
    unknown_customer = "unknown_customer"
    ignored = "ignored"
    failed = "failed"


class StripeEvent(SQLModel, table=True):
    """The webhook inbox: every verified Stripe event, stored once by its id."""

    __tablename__ = "stripe_events"
    __table_args__ = (
        one_of("status", StripeEventStatus, "ck_stripe_events_status"),
        UniqueConstraint("stripe_event_id", name="uq_stripe_events_event_id"),
    )

    id: uuid.UUID = id_field()
    stripe_event_id: str = Field(max_length=255)
    type: str = Field(max_length=100, index=True)
    stripe_customer_id: str | None = Field(default=None, max_length=255, index=True)
    stripe_created_at: datetime | None = tz_field(nullable=True)
    payload: dict[str, Any] = json_field()
    source: str = Field(default="webhook", max_length=16)  # webhook | catchup
    status: str = Field(default=StripeEventStatus.received, max_length=32, index=True)
    error: str | None = Field(default=None, max_length=2000)
    received_at: datetime = created_at_field()
    processed_at: datetime | None = tz_field(nullable=True)
