"""FamilyBillingWorkflow's contract (one per family, ``family-billing-{parent}``, the single writer of its money):
its input, the signals it takes (enrollment's students starting and stopping, Stripe events, dunning's requests),
its updates and queries with their results, the state it carries across continue-as-new, and its activities'
inputs and results (the Stripe adapter's snapshots and calls, the database mirror's). Ids and amounts only, no names.

What billing tells dunning (a failed or paid invoice, a new card) are dunning's signals: ``core.contracts.dunning``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, Field

FAMILY_BILLING_WORKFLOW = "FamilyBillingWorkflow"
# The Temporal UI's summary of a family's billing, by what started it (ids only, no personal data).
BILLING_SUMMARY_FROM_ENROLLMENT = "Billing of a family, started by an enrollment"
BILLING_SUMMARY_FROM_STRIPE = "Billing of a family, started by a Stripe event"
SIGNAL_STUDENT_STARTED = "student_started"  # enrollment → billing
SIGNAL_STUDENT_STOPPED = "student_stopped"  # enrollment (or an admin) → billing
SIGNAL_LESSONS_BOOKED = "lessons_booked"  # re-enrollment → billing: a returning student's next semester is booked
SIGNAL_STRIPE_EVENT = "stripe_event"  # the webhook, the catch-up and reconciliation → billing
SIGNAL_RETRY_INVOICE = "retry_invoice"  # dunning → billing
SIGNAL_WRITE_OFF = "write_off"  # dunning → billing
UPDATE_CHANGE_CARD = "change_card"
UPDATE_REFUND = "refund_payment"
UPDATE_RENEW = "renew_subscription"
UPDATE_ADD_CHARGE = "add_charge"  # an admin's one-off charge or credit
UPDATE_START_STUDENT = "start_student"  # enrollment → billing (update-with-start): answers whether billing started
QUERY_SUBSCRIPTIONS = "subscriptions"
QUERY_OPEN_INVOICES = "open_invoices"
QUERY_BALANCE = "balance"


class FamilyBillingInput(BaseModel):
    """Starts (or continues-as-new) one family's billing workflow; the state it carries is billing's own."""

    parent_id: uuid.UUID
    # Set by billing itself when it continues-as-new: its own state, carried over (opaque to others). Histories
    # recorded before it was typed carry the same fields as a plain object, which loads into the model.
    state: FamilyBillingState | None = None


# --- signals -------------------------------------------------------------------------------------------------


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
    # The enrollment waits for billing's answer (update-with-start) instead of signalling; older messages signal.
    await_outcome: bool = False
    # False for a family that registered before Cedar (an imported enrollment): no registration fee.
    registration_fee: bool = True


class StudentStopped(BaseModel):
    """Sent when an active enrollment is cancelled: stop charging for that student's lessons."""

    enrollment_id: uuid.UUID
    parent_id: uuid.UUID
    student_id: uuid.UUID
    # Older messages carry a staff-typed reason here; it is no longer sent (free text stays out of histories).
    reason: str = ""
    # The audit row holding the reason someone typed (the history keeps only this reference).
    reason_note_id: uuid.UUID | None = None
    # The end of the student's last lesson that happens: nothing is billed after it, and the last period is
    # prorated by the lessons it holds. None (older messages) stops billing the old way.
    last_lesson_ends_at: datetime | None = None


class LessonsBooked(BaseModel):
    """A returning student's next semester is booked on the same enrollment: billing continues without a gap and
    raises no invoice for the weeks between semesters."""

    enrollment_id: uuid.UUID
    parent_id: uuid.UUID
    first_lesson_starts_at: datetime
    last_lesson_ends_at: datetime


class StripeEventReceived(BaseModel):
    """Webhook/catch-up → billing workflow: a verified event is in the inbox; act on it once."""

    stripe_event_id: str
    type: str
    object_id: str | None = None  # the event's object (invoice, subscription, charge…)
    invoice_id: str | None = None  # the invoice it concerns, when it concerns one
    charge_id: str | None = None  # the charge it concerns (a charge or refund event)


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
    # The audit row of the admin's action that asked for it (its reason stays there).
    reason_note_id: uuid.UUID | None = None
    # False when an admin forgives the debt: write the invoices off but keep the subscriptions running.
    end_subscriptions: bool = True


# --- updates (they answer the API) and their results ---------------------------------------------------------


class CardChange(BaseModel):
    stripe_payment_method_id: str = Field(min_length=3, max_length=255)


class RefundRequest(BaseModel):
    request_id: uuid.UUID
    payment_id: uuid.UUID
    amount_minor: int | None = Field(default=None, gt=0)
    # Older requests carry the staff-typed reason here; the API sends only reason_note_id now (no free text in
    # histories). Cedar's own refunds (a stop's unheld lessons) still say why in generated words.
    reason: str = Field(default="", max_length=500)
    # The audit row holding the reason the admin typed.
    reason_note_id: uuid.UUID | None = None
    # Tuition for lessons that will not happen (a stop): the ledger takes it back from deferred revenue.
    unearned: bool = False


class RefundResult(BaseModel):
    refund_id: uuid.UUID
    stripe_refund_id: str
    amount_minor: int


class RenewRequest(BaseModel):
    stripe_subscription_id: str


class RenewResult(BaseModel):
    stripe_invoice_id: str
    period: int
    status: str
    # The lesson period billed (``2026-09``, or a week's Monday) and its amount by the tuition rule; None when the
    # subscription's enrollment has no lessons booked (the plan's price, as before lesson periods).
    period_key: str | None = None
    amount_minor: int | None = None


class ChargeRequest(BaseModel):
    """A one-off charge (books, a recital fee) or credit (goodwill), once per ``request_id``: on the family's next
    invoice (a pending Stripe invoice item) or, for a charge, on its own invoice made and paid now."""

    request_id: uuid.UUID
    amount_minor: int = Field(gt=0)
    description: str = Field(min_length=1, max_length=200)
    kind: Literal["charge", "credit"] = "charge"
    when: Literal["next_invoice", "now"] = "next_invoice"


class ChargeResult(BaseModel):
    request_id: uuid.UUID
    stripe_invoice_item_id: str
    amount_minor: int  # signed as on the invoice: a credit is negative
    stripe_invoice_id: str | None = None  # "now": the charge's own invoice
    status: str = "pending"  # pending (until the next invoice) | the invoice's status (paid, past_due…)


# --- activities ----------------------------------------------------------------------------------------------


class BillingConfigRequest(BaseModel):
    pass


class BillingConfig(BaseModel):
    continue_as_new_after_commands: int
    # None: Stripe calls run on the workflow's own queue (and did, in runs recorded before this field).
    stripe_task_queue: str | None = None
    # New fields have defaults: recorded answers of this activity from before them still load.
    command_retry_after: timedelta = timedelta(minutes=5)
    command_attempts: int = 4
    email_attempts: int = 5


class StartOutcome(BaseModel):
    """Billing's answer to a student's start: started (a subscription exists), or failed with the reason."""

    enrollment_id: uuid.UUID
    status: Literal["started", "failed"]
    reason: str | None = None
    error_type: str | None = None  # NoRate, CardRejected, ... when failed


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


class ChargeLine(BaseModel):
    """One of Cedar's one-off charges or credits on an invoice (a line tagged ``cedar_charge_id``)."""

    stripe_invoice_item_id: str
    charge_id: str  # the request id it was made for
    amount_minor: int  # negative for a credit


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
    # The latest attempt waits for the parent's bank confirmation (its payment intent requires action), and
    # whether Stripe has a hosted invoice page where they can give it (localstripe has none).
    confirmation_needed: bool = False
    # Never filled now: the hosted page's link shows the customer's details, so it stays out of histories (older
    # histories carry it, read but never written again); emails link to Cedar's page that looks it up
    # (core.page_links.invoice_confirm_path).
    hosted_invoice_url: str | None = Field(default=None, exclude=True)
    has_hosted_page: bool = False
    charge_lines: list[ChargeLine] = Field(default_factory=list)
    # Where the period the invoice bills starts (its subscription lines' period; a development renewal stamps it),
    # and its Cedar lesson-period adjustments already made (``cedar_adjustment`` tags).
    cycle_start: datetime | None = None
    adjustments: list[str] = Field(default_factory=list)


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
    # The bank wants the parent to confirm the payment (3-D Secure; failure_code "authentication_required"), and
    # whether Stripe's hosted invoice page lets them (localstripe has none). confirm_url: older histories only
    # (read, never written again).
    confirm_url: str | None = Field(default=None, exclude=True)
    confirm_online: bool = False


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
    # Stripe's cycle on Cedar's periods: the first full period starts here (the stub before it is prorated).
    billing_cycle_anchor: datetime | None = None


class SubscriptionRef(BaseModel):
    stripe_subscription_id: str


class CancelSubscription(BaseModel):
    stripe_subscription_id: str
    # None: the school's setting (stop_lessons_mode) decides.
    immediately: bool | None = None
    # False: no time-based credit from Stripe (the tuition rule's refund gives back the unheld lessons instead).
    prorate: bool = True


class ScheduleSubscription(BaseModel):
    """Let Stripe follow the lessons by itself: end at the last lesson (``cancel_at``) and skip a gap between
    semesters (``trial_end`` at the next semester's first lesson). None leaves a field as it is."""

    stripe_subscription_id: str
    cancel_at: datetime | None = None
    trial_end: datetime | None = None


class CreateAdjustment(BaseModel):
    """The difference between a lesson period's amount by the tuition rule and the plan's price, as an invoice item
    on the subscription's next invoice, once per (subscription, period)."""

    stripe_customer_id: str
    stripe_subscription_id: str
    period: int = Field(ge=1)
    period_key: str
    amount_minor: int  # negative: less than the plan's price


class CreateRenewal(BaseModel):
    stripe_customer_id: str
    stripe_subscription_id: str
    period: int = Field(ge=1)
    # Where the period billed starts, stamped on the invoice as Stripe's clock would date its lines (localstripe
    # has no clock); None for renewals made before Stripe's cycle followed Cedar's periods.
    period_start: datetime | None = None


class AdjustInvoice(BaseModel):
    """Bring a subscription's draft invoice to its lesson period's amount by the tuition rule: one invoice item
    on that invoice (``invoice=``) for the difference, once per (subscription, period)."""

    stripe_invoice_id: str
    stripe_customer_id: str
    stripe_subscription_id: str
    period_key: str
    amount_minor: int = Field(ge=0)


class InvoiceAdjusted(BaseModel):
    status: str  # the invoice's status in Stripe when it was looked at: only a draft is adjusted
    adjustment_minor: int = 0  # the period's adjustments on the invoice, together
    stripe_invoice_item_id: str | None = None
    # The invoice bills the amount asked (apart from Cedar's one-off charges); False: finalized before it could be.
    reached: bool = False


class CreateInvoiceItem(BaseModel):
    stripe_customer_id: str
    request_id: uuid.UUID
    amount_minor: int  # negative for a credit
    description: str


class ChargeInvoice(BaseModel):
    """The invoice of a "now" charge: the customer's pending items, invoiced at once."""

    stripe_customer_id: str
    request_id: uuid.UUID


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
    # The school's registration fee for this enrollment (settings at the start; 0: none). Defaults keep the
    # quotes recorded before the fee existed replaying as no fee.
    registration_fee_minor: int = 0
    registration_fee_when: Literal["first_invoice", "now"] = "first_invoice"


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
    unearned: bool = False


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


class LessonPlanRequest(BaseModel):
    enrollment_id: uuid.UUID
    # Only lessons ending by then count (the student stops after that lesson); None: every lesson booked.
    until: datetime | None = None


class PeriodPlan(BaseModel):
    key: str
    start: date
    end: date  # exclusive
    lessons: int
    amount_minor: int


class CycleAnchorRequest(BaseModel):
    enrollment_id: uuid.UUID
    interval: str  # week | month


class CycleAnchor(BaseModel):
    """Where a new subscription's Stripe cycle is anchored (None: no lessons booked, Stripe's own cycle)."""

    anchor: datetime | None = None


class InvoicePeriodRequest(BaseModel):
    enrollment_id: uuid.UUID
    at: datetime  # an instant inside the period
    until: datetime | None = None  # as in LessonPlanRequest


class InvoicePeriod(BaseModel):
    """Cedar's lesson period holding an instant, and what it costs by the tuition rule (0: it holds no lessons)."""

    follows_lessons: bool
    key: str
    start: date
    starts_at: datetime
    ends_at: datetime
    lessons: int
    amount_minor: int
    # This period or a later one holds lessons (False: nothing is left to bill from here on).
    later_lessons: bool
    # Where the first period holding lessons from this one on starts (None: none left, or an older answer).
    next_starts_at: datetime | None = None


class LessonGapRequest(BaseModel):
    enrollment_id: uuid.UUID
    after: datetime  # the first gap not over at this instant
    until: datetime | None = None  # as in LessonPlanRequest


class LessonGap(BaseModel):
    """Whole periods without lessons ahead: billing pauses from ``begins_at`` (the end of the last lesson before
    them) until ``resumes_at`` (the start of the period holding the next lesson). None: no gap ahead."""

    begins_at: datetime | None = None
    resumes_at: datetime | None = None
    # When the current lesson period has given its last lesson: billing looks again then, so a period emptied
    # meanwhile (a closure) raises no invoice either. None: no later period holds lessons.
    checks_at: datetime | None = None


class BeginGap(BaseModel):
    """A scheduled command: the last lesson before a gap has ended, so billing pauses until the next lessons."""

    enrollment_id: uuid.UUID


class LessonPlan(BaseModel):
    """The subscription's lesson periods and their amounts by the school's tuition rule."""

    # False: the enrollment has no regular lessons booked at all, so billing keeps the plan's price every period.
    follows_lessons: bool
    rule: str
    price_minor: int
    interval: str
    periods: list[PeriodPlan] = Field(default_factory=list)
    first_lesson_starts_at: datetime | None = None
    last_lesson_ends_at: datetime | None = None


class InvoicePaymentRef(BaseModel):
    stripe_invoice_id: str


class PrepareRefund(BaseModel):
    request_id: uuid.UUID
    billing_account_id: uuid.UUID
    payment_id: uuid.UUID
    amount_minor: int | None = None  # None: whatever is left to refund


# --- the state carried across continue-as-new, and the queries' answers ---------------------------------------


class BilledPeriod(BaseModel):
    key: str
    start: date
    amount_minor: int
    stripe_invoice_id: str
    ends_at: datetime | None = None  # None: billed before Stripe's cycle followed Cedar's periods


class SubscriptionState(BaseModel):
    enrollment_id: uuid.UUID
    student_id: uuid.UUID
    stripe_subscription_id: str
    status: str
    amount_minor: int
    discount_percent: int = 0
    renewals: int = 0
    # Lesson periods billed, by key (new fields are optional: states carried before lesson periods still load).
    billed: dict[str, BilledPeriod] = Field(default_factory=dict)
    # The student stopped: nothing after this instant is billed.
    lessons_until: datetime | None = None
    # Refunds of unheld lessons made on a stop, by period key: given back once.
    stop_refunds: dict[str, int] = Field(default_factory=dict)
    # Stripe's cycle is anchored to Cedar's periods and each period invoice is adjusted in draft (subscriptions
    # started before that keep their way).
    cycle: bool = False


class InvoiceState(BaseModel):
    stripe_invoice_id: str
    status: str
    amount_due_minor: int
    amount_paid_minor: int = 0
    attempts: int = 0


class Command(BaseModel):
    kind: str
    payload: dict[str, Any]
    reply_to: str | None = None  # an update waiting for the result
    attempt: int = 1  # tries so far, counting this one (a failed command is queued again with the next number)


class FailedCommand(BaseModel):
    """A command that failed with nobody waiting on it: retried on a schedule, kept here until it works."""

    key: str  # the scheduled retry's key
    command: Command
    error: str
    error_type: str | None = None
    failed_at: datetime
    given_up: bool = False  # every retry failed: the family is flagged and the office told


class ScheduledCommand(BaseModel):
    """A command the run loop queues once ``due`` has come (a durable timer carried in the state)."""

    key: str  # one per purpose and enrollment: planning again replaces it
    due: datetime
    command: Command


class Reply(BaseModel):
    result: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None


class FamilyBillingState(BaseModel):
    """What billing carries across continue-as-new. Versioned; fields added later are optional with defaults, so a
    state carried by an older run (or recorded in an older history) still loads."""

    version: int = 1
    billing_account_id: uuid.UUID | None = None
    stripe_customer_id: str | None = None
    # Why the family's card could not be attached, reported with the payment failures it causes.
    card_problem: PaymentFailure | None = None
    subscriptions: dict[str, SubscriptionState] = Field(default_factory=dict)  # by enrollment id
    open_invoices: dict[str, InvoiceState] = Field(default_factory=dict)  # by Stripe invoice id
    pending: list[Command] = Field(default_factory=list)
    commands_handled: int = 0
    # One-off charges and credits made, by request id: a retried request answers from here, never charges twice.
    charges: dict[str, ChargeResult] = Field(default_factory=dict)
    # Commands waiting for their time (a gap's pause once its last lesson has ended).
    scheduled: list[ScheduledCommand] = Field(default_factory=list)
    # Students' starts answered, by enrollment id: a second start answers the first's outcome and does nothing.
    started: dict[str, StartOutcome] = Field(default_factory=dict)
    # Commands that failed without a caller waiting: retried, then surfaced (never dropped).
    failed: list[FailedCommand] = Field(default_factory=list)


class SubscriptionsView(BaseModel):
    subscriptions: list[SubscriptionState]


class InvoicesView(BaseModel):
    invoices: list[InvoiceState]


class BalanceView(BaseModel):
    owed_minor: int
    open_invoices: int


FamilyBillingInput.model_rebuild()
