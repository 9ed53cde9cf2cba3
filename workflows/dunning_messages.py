"""Dunning's own messages: admin signals, the re-evaluate nudge of the daily sweep, the state query's answer,
and the state carried across continue-as-new. Billing's messages are in ``workflows.billing_messages``."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

SIGNAL_REEVALUATE = "reevaluate"
SIGNAL_PAUSE = "pause"
SIGNAL_RESUME = "resume"
SIGNAL_RETRY_NOW = "retry_now"
SIGNAL_FORGIVE = "forgive"
QUERY_STATE = "state"

ADMIN_SIGNALS = (SIGNAL_PAUSE, SIGNAL_RESUME, SIGNAL_RETRY_NOW, SIGNAL_FORGIVE)


class Reevaluate(BaseModel):
    """The daily sweep's nudge: recompute the state now and send whatever is due."""

    reason: str = "daily_sweep"


class AdminAction(BaseModel):
    """An operator's pause / resume / retry-now / forgive; who did it is in the audit log too."""

    actor_user_id: uuid.UUID | None = None
    reason: str = ""


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
    confirm_url: str | None = None
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


class DunningCarried(BaseModel):
    """Everything the workflow knows; carried across continue-as-new and answered by the state query."""

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
