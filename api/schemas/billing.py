"""Request and response bodies of the family billing API (amounts in integer minor units of CAD)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationInfo, field_validator

from api.schemas.common import RequestModel, ResponseModel
from api.schemas.records import InvoiceOut, PaymentOut


class SubscriptionOut(ResponseModel):
    id: uuid.UUID
    student_id: uuid.UUID
    enrollment_id: uuid.UUID
    stripe_subscription_id: str | None
    status: str
    interval: str
    amount_minor: int
    discount_percent: int
    currency: str
    trial_end: datetime | None
    current_period_end: datetime | None
    cancel_at_period_end: bool
    canceled_at: datetime | None


class FamilyBillingOut(ResponseModel):
    parent_id: uuid.UUID
    billing_account_id: uuid.UUID | None
    dunning_state: str
    has_card: bool
    balance_minor: int = Field(description="what the family owes now (its receivable in the ledger)")
    subscriptions: list[SubscriptionOut]
    invoices: list[InvoiceOut]
    payments: list[PaymentOut]


class CardUpdate(RequestModel):
    payment_method_id: str = Field(min_length=3, max_length=255, pattern=r"^pm_[A-Za-z0-9_]+$")


class CardOut(ResponseModel):
    attached: bool
    payment_method_id: str


class StopLessons(RequestModel):
    reason: str = Field(default="stopped by the family", max_length=500)


class StopAccepted(ResponseModel):
    subscription_id: uuid.UUID
    status: str
    enrollment_id: uuid.UUID
    via: Literal["enrollment", "billing"] = Field(
        description="enrollment: its workflow's cancel stops everything; billing: the enrollment's workflow was gone"
    )
    stopped: list[str] = Field(description="what the stop ends: lessons, teacher_place, billing, enrollment")
    lessons_cancelled: int | None = Field(
        default=None, description="lessons cancelled here (None: the enrollment's workflow cancels them)"
    )


class RefundCreate(RequestModel):
    amount_minor: int | None = Field(default=None, gt=0, description="omit to refund what is left of the payment")
    reason: str = Field(default="", max_length=500)


class ChargeCreate(RequestModel):
    """A one-off charge (books, a recital fee) or credit (goodwill) for the family."""

    amount_minor: int = Field(gt=0, le=10_000_000, description="cents, always positive; `kind` says which way")
    description: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    kind: Literal["charge", "credit"] = "charge"
    when: Literal["next_invoice", "now"] = Field(
        default="next_invoice", description="on the family's next invoice, or (a charge) invoiced and paid now"
    )

    @field_validator("when")
    @classmethod
    def _credit_waits(cls, when: str, info: ValidationInfo) -> str:
        if when == "now" and info.data.get("kind") == "credit":
            raise ValueError("a credit goes on the next invoice; to give money back now, refund a payment")
        return when


class ChargeOut(ResponseModel):
    request_id: uuid.UUID
    stripe_invoice_item_id: str
    amount_minor: int
    stripe_invoice_id: str | None
    status: str


class RefundOut(ResponseModel):
    refund_id: uuid.UUID
    stripe_refund_id: str
    payment_id: uuid.UUID
    amount_minor: int


class AccountBalance(ResponseModel):
    code: str
    name: str
    type: str
    balance_minor: int


class TrialBalanceOut(ResponseModel):
    accounts: list[AccountBalance]
    total_minor: int = Field(description="debits less credits over all accounts: always 0")


class StatementLine(ResponseModel):
    occurred_at: datetime
    kind: str
    memo: str
    amount_minor: int = Field(description="the entry's effect on what the family owes (+ charge, - payment)")
    balance_minor: int


class StatementOut(ResponseModel):
    parent_id: uuid.UUID
    lines: list[StatementLine]
    charges_minor: int
    payments_minor: int
    refunds_minor: int
    balance_minor: int


class RenewalOut(ResponseModel):
    subscription_id: uuid.UUID
    stripe_invoice_id: str
    period: int
    status: str
    period_key: str | None = Field(
        default=None, description="the lesson period billed (2026-09, or a week's Monday); None: no lessons booked"
    )
    amount_minor: int | None = Field(default=None, description="the period's amount by the tuition rule")
