"""FamilyDunningWorkflow's contract (one per family, ``family-dunning-{parent}``): its input, billing's signals to it
(a failed or paid invoice, a new card), the admins' signals, the daily sweep's nudge, the state query's answer, the
state carried across continue-as-new, and its activities' inputs and results.

What dunning asks of billing (retry, re-check, write off) are billing's signals: ``core.contracts.billing``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from pydantic import BaseModel, Field

FAMILY_DUNNING_WORKFLOW = "FamilyDunningWorkflow"
# How the workflow reads in Temporal's UI (billing starts it on a failed payment; kinds only, no personal data).
DUNNING_SUMMARY = "Dunning of a family, started by a failed payment"

# --- billing → dunning ---------------------------------------------------------------------------------------
# Billing owns every money operation (charges, retries, write-offs); dunning owns the calendar of what happens
# to a family that owes money (retries' timing, reminders, suspension, cancellation). Billing tells dunning what
# happened; dunning asks billing to act.

SIGNAL_INVOICE_FAILED = "invoice_failed"
SIGNAL_INVOICE_PAID = "invoice_paid"
SIGNAL_CARD_UPDATED = "card_updated"

# --- the sweep's and the admins' signals, the query ----------------------------------------------------------

SIGNAL_REEVALUATE = "reevaluate"
SIGNAL_PAUSE = "pause"
SIGNAL_RESUME = "resume"
SIGNAL_RETRY_NOW = "retry_now"
SIGNAL_FORGIVE = "forgive"
QUERY_STATE = "state"

ADMIN_SIGNALS = (SIGNAL_PAUSE, SIGNAL_RESUME, SIGNAL_RETRY_NOW, SIGNAL_FORGIVE)

# The admins' actions as updates: a validator refuses what the family's state forbids before anything is recorded,
# and the answer is the snapshot after the action. The signals above stay registered for running histories.
UPDATE_PAUSE = "pause_update"
UPDATE_RESUME = "resume_update"
UPDATE_RETRY_NOW = "retry_now_update"
UPDATE_FORGIVE = "forgive_update"
ADMIN_UPDATES = {
    "pause": UPDATE_PAUSE,
    "resume": UPDATE_RESUME,
    "retry-now": UPDATE_RETRY_NOW,
    "forgive": UPDATE_FORGIVE,
}


class FamilyDunningInput(BaseModel):
    parent_id: uuid.UUID
    # Dunning's own state, carried across continue-as-new (billing never sets it). Histories recorded before it
    # was typed carry the same fields as a plain object, which loads into the model.
    carried: DunningCarried | None = None


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
    # The bank wants the parent to confirm this payment (failure_code "authentication_required"), and whether
    # Stripe's hosted page lets them do it online (its link is looked up when the parent follows Cedar's).
    # confirm_url: older histories only (read, never written again).
    confirm_url: str | None = Field(default=None, exclude=True)
    confirm_online: bool = False


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


# The payload of each signal billing sends (billing's notify_dunning activity decodes them by signal name).
BILLING_SIGNALS: dict[str, type[BaseModel]] = {
    SIGNAL_INVOICE_FAILED: InvoiceFailed,
    SIGNAL_INVOICE_PAID: InvoicePaid,
    SIGNAL_CARD_UPDATED: CardUpdated,
}


class Reevaluate(BaseModel):
    """The daily sweep's nudge: recompute the state now and send whatever is due."""

    reason: str = "daily_sweep"


class AdminAction(BaseModel):
    """An operator's pause / resume / retry-now / forgive; who did it and why are in the audit log."""

    actor_user_id: uuid.UUID | None = None
    # Older histories carry the staff-typed reason here; it is no longer sent (free text stays out of histories).
    reason: str = ""
    # The audit row holding the reason (the workflow keeps only this reference).
    note_id: uuid.UUID | None = None


# --- the state carried and queried ---------------------------------------------------------------------------


class UnpaidInvoice(BaseModel):
    """One unpaid invoice as dunning tracks it."""

    invoice_id: uuid.UUID
    stripe_invoice_id: str
    amount_due_minor: int
    first_failed_at: datetime
    # Attempts so far, the original charge included (Stripe's attempt_count).
    attempts: int = 0
    hard_decline: bool = False
    # The bank wants the parent to confirm the payment (3-D Secure): retrying without them is pointless, so the
    # notices ask them to confirm (at confirm_url when Stripe gave one) instead.
    needs_confirmation: bool = False
    confirm_url: str | None = Field(default=None, exclude=True)  # older states only: no longer carried
    confirm_online: bool = False
    # When the latest attempt happened (ours, billing's on a card update, or the original charge).
    last_attempt_at: datetime | None = None
    # A retry asked of billing whose answer has not come yet, and since when.
    retry_sent_at: datetime | None = None
    # The last attempt's outcome is unknown since then: billing re-checks it with Stripe after
    # settings.dunning_unknown_recheck_after, and again each time a check goes unanswered (never a blind retry).
    unknown_since: datetime | None = None


class DunningEvent(BaseModel):
    """A line of the family's dunning timeline (shown to admins; ids and states only)."""

    at: datetime
    kind: str
    detail: str = ""
    # An admin's action: the audit row with its reason (the API fills ``detail`` from it when it shows the event).
    note_id: uuid.UUID | None = None


class DunningCarried(BaseModel):
    """Everything the workflow knows; carried across continue-as-new and answered by the state query. Versioned;
    fields added later are optional with defaults, so a state carried by an older run still loads."""

    version: int = 1
    state: str = "clear"
    paused: bool = False
    paused_since: datetime | None = None
    mirrored_paused: bool = False  # the pause as billing_accounts last recorded it
    lessons_suspended: bool = False
    invoices: dict[str, UnpaidInvoice] = Field(default_factory=dict)  # by Stripe invoice id
    # Failed attempts whose payment-failed email is still to send: (stripe invoice id, attempt).
    failures_to_notify: list[tuple[str, int]] = Field(default_factory=list)
    # The invoice whose payment brought the family back (drives the "recovered" email).
    last_paid_invoice_id: uuid.UUID | None = None
    retry_all_requested: bool = False
    forgive_requested: bool = False
    # The audit row of the forgive being carried out (its reason stays there), passed on to billing's write-off.
    forgive_note_id: uuid.UUID | None = None
    timeline: list[DunningEvent] = Field(default_factory=list)


class DunningSnapshot(BaseModel):
    """The state query's answer."""

    parent_id: uuid.UUID
    state: str
    paused: bool
    lessons_suspended: bool
    invoices: list[UnpaidInvoice]
    next_action_at: datetime | None
    timeline: list[DunningEvent]


# --- activities ----------------------------------------------------------------------------------------------


class FamilyRef(BaseModel):
    parent_id: uuid.UUID


class DunningConfig(BaseModel):
    """The settings a dunning workflow runs by, read once per run (a local activity keeps them replay-safe)."""

    warning_after: timedelta
    suspend_after: timedelta
    cancel_after: timedelta
    retry_offsets: list[timedelta]
    unknown_recheck_after: timedelta
    # "stripe": Stripe's Smart Retries collect, so dunning schedules no retries of its own.
    retries_owner: str
    school_timezone: str
    currency: str
    card_update_url: str
    # Where emails' links start (CEDAR_PUBLIC_BASE_URL).
    public_base_url: str = ""


class RecordDunningState(BaseModel):
    parent_id: uuid.UUID
    state: str
    paused: bool


class TeacherLessons(BaseModel):
    """One teacher's lessons that moved, as local times (no names: this travels through workflow history)."""

    teacher_id: uuid.UUID
    lesson_times: list[str]


class LessonsChanged(BaseModel):
    """What a suspend / restore / cancel moved: the lessons, and the teachers to tell (one notice each)."""

    lesson_ids: list[uuid.UUID]
    teachers: list[TeacherLessons]
    enrollments_cancelled: int = 0
