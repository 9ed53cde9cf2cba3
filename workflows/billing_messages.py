"""The messages between enrollment, billing and dunning: the contract each side codes against.

Workflows are addressed by name (strings below), so no capability imports another's workflow module.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel

FAMILY_BILLING_WORKFLOW = "FamilyBillingWorkflow"
SIGNAL_STUDENT_STARTED = "student_started"
SIGNAL_STUDENT_STOPPED = "student_stopped"


class FamilyBillingInput(BaseModel):
    """Starts (or continues-as-new) one family's billing workflow; the state it carries is billing's own."""

    parent_id: uuid.UUID
    # Set by billing itself when it continues-as-new: its own state, carried over (opaque to others).
    state: dict[str, Any] | None = None


class StudentStarted(BaseModel):
    """Sent by the enrollment workflow when a demo's outcome is `continue`: start charging for lessons."""

    enrollment_id: uuid.UUID
    parent_id: uuid.UUID
    student_id: uuid.UUID
    teacher_id: uuid.UUID
    instrument: str
    lesson_minutes: int
    billing_interval: str  # week | month
    stripe_payment_method_id: str
    first_regular_lesson_at: datetime  # the trial ends here, so the demo is free


class StudentStopped(BaseModel):
    """Sent when an active enrollment is cancelled: stop charging for that student's lessons."""

    enrollment_id: uuid.UUID
    parent_id: uuid.UUID
    student_id: uuid.UUID
    reason: str


# --- billing ⇄ dunning -------------------------------------------------------------------------------------
# Billing owns every money operation (charges, retries, write-offs); dunning owns the calendar of what happens
# to a family that owes money (retries' timing, reminders, suspension, cancellation). Dunning asks billing to
# act; billing tells dunning what happened.

FAMILY_DUNNING_WORKFLOW = "FamilyDunningWorkflow"
SIGNAL_INVOICE_FAILED = "invoice_failed"
SIGNAL_INVOICE_PAID = "invoice_paid"
SIGNAL_CARD_UPDATED = "card_updated"
SIGNAL_RETRY_INVOICE = "retry_invoice"  # dunning → billing
SIGNAL_WRITE_OFF = "write_off"  # dunning → billing


class FamilyDunningInput(BaseModel):
    parent_id: uuid.UUID
    # Dunning's own state, carried across continue-as-new (billing never sets it).
    carried: dict[str, Any] | None = None


class InvoiceFailed(BaseModel):
    """Billing → dunning (signal-with-start): a payment attempt on an invoice failed."""

    parent_id: uuid.UUID
    invoice_id: uuid.UUID
    stripe_invoice_id: str
    amount_due_minor: int
    failed_at: datetime
    attempt: int
    decline_code: str | None = None
    failure_code: str | None = None
    # True when the gateway's answer was lost (timeout): dunning must have billing re-check, not retry blindly.
    outcome_unknown: bool = False
    # The bank wants the parent to confirm this payment (failure_code "authentication_required"), and where.
    confirm_url: str | None = None


class InvoicePaid(BaseModel):
    """Billing → dunning: an invoice was paid (by a retry, a card update, or the parent)."""

    parent_id: uuid.UUID
    invoice_id: uuid.UUID
    stripe_invoice_id: str
    paid_at: datetime


class CardUpdated(BaseModel):
    """Billing → dunning: the family has a new default card, so past-due invoices are retried at once."""

    parent_id: uuid.UUID
    stripe_payment_method_id: str


class RetryInvoice(BaseModel):
    """Dunning → billing: try to collect this invoice now (billing re-checks Stripe before charging)."""

    stripe_invoice_id: str
    attempt: int
    # True when the last attempt's outcome is unknown: only re-read the invoice from Stripe and report
    # InvoicePaid / InvoiceFailed; never charge.
    check_only: bool = False


class WriteOff(BaseModel):
    """Dunning → billing: the family is cancelled for non-payment; end subscriptions, mark the invoices
    uncollectible and post bad debt."""

    stripe_invoice_ids: list[str]
    reason: str
    # False when an admin forgives the debt: write the invoices off but keep the subscriptions running.
    end_subscriptions: bool = True
