"""Cedar's Stripe adapter: every call Cedar makes to Stripe, each with an idempotency key from business ids.

Stripe keeps an Idempotency-Key for a day and replays the first answer; localstripe ignores the header, so every
creating call first looks for what an earlier attempt may have made: our own row by business id, then the Stripe
object by the metadata we stamp on it (``cedar_*``). The production path is the same code; the few places where
localstripe differs from Stripe are marked "localstripe:" and listed in docs/billing.md.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec, TypeVar, cast

import stripe
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from stripe.params import SubscriptionCancelParams, SubscriptionCreateParams, SubscriptionUpdateParams
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.contracts.billing import (
    AdjustInvoice,
    AttachCard,
    CancelSubscription,
    CardResult,
    ChargeInvoice,
    ChargeLine,
    ChargeRef,
    ChargeSnapshot,
    CreateAdjustment,
    CreateInvoiceItem,
    CreateRefund,
    CreateRenewal,
    CreateSubscription,
    CustomerRef,
    EnsureCustomer,
    EnsurePlan,
    InvoiceAdjusted,
    InvoiceRef,
    InvoiceSnapshot,
    PayInvoice,
    PaymentFailure,
    PayOutcome,
    RefundSnapshot,
    ScheduleSubscription,
    SubscriptionRef,
    SubscriptionSnapshot,
)
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.temporal import billing_workflow_id
from domain.billing_rules import stripe_key
from domain.dunning import AUTHENTICATION_REQUIRED
from domain.ledger import estimate_fee
from models import BillingAccount, Parent, Subscription

# localstripe always answers `card_declined` without a decline code; Stripe's test cards have these.
TEST_CARD_DECLINES: dict[str, tuple[str, str]] = {
    "0002": ("card_declined", "generic_decline"),
    "9995": ("card_declined", "insufficient_funds"),
    "9987": ("card_declined", "lost_card"),
    "9979": ("card_declined", "stolen_card"),
    "0069": ("expired_card", "expired_card"),
    "0127": ("incorrect_cvc", "incorrect_cvc"),
    "0119": ("processing_error", "processing_error"),
    "0341": ("card_declined", "generic_decline"),
}
# A trial must end in the future when the subscription is created; closer than this, bill at once.
MIN_TRIAL = timedelta(minutes=5)


P = ParamSpec("P")
R = TypeVar("R")
# Stripe's messages name ids, never a customer's details, except an address it refuses: kept out of failures.
EMAIL_PATTERN = re.compile(r"[^\s'\"<>@]+@[^\s'\"<>@]+")
REASON_LIMIT = 300


def classify_stripe_error(error: stripe.StripeError, call: str) -> BaseException:
    """What Temporal should do about a Stripe error no call handled itself: a refusal (4xx other than 409 and 429)
    is final, a rate limit waits for Stripe's ``Retry-After``, and outages (5xx, network, 409) are retried."""
    status = error.http_status
    if isinstance(error, stripe.RateLimitError) or status == 429:
        return ApplicationError(
            f"Stripe rate-limited {call}", type="StripeRateLimited", next_retry_delay=retry_after(error)
        )
    if status is None or status >= 500 or status == 409 or isinstance(error, stripe.APIConnectionError):
        return error
    if status < 400:
        return error
    return ApplicationError(
        f"Stripe refused {call} ({stripe_reason(error)})",
        type=f"Stripe{type(error).__name__.removesuffix('Error')}",
        non_retryable=True,
    )


def stripe_reason(error: stripe.StripeError) -> str:
    """Stripe's status, code and message, without any e-mail address it quotes."""
    body = cast(dict[str, Any], error.json_body or {}).get("error") or {}
    message = str(body.get("message") or error.user_message or "").strip()
    parts = [str(error.http_status), error.code or body.get("type") or "", EMAIL_PATTERN.sub("[address]", message)]
    return ", ".join(part for part in parts if part)[:REASON_LIMIT]


def retry_after(error: stripe.StripeError) -> timedelta | None:
    """Stripe's ``Retry-After`` (seconds) on a 429, when it sent one."""
    headers = {str(key).lower(): value for key, value in (error.headers or {}).items()}
    try:
        seconds = float(headers["retry-after"])
    except (KeyError, TypeError, ValueError):
        return None
    return timedelta(seconds=seconds) if seconds > 0 else None


def stripe_failures(call: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Every Stripe activity's failures classified in one place (see ``classify_stripe_error``); the errors a
    call handles itself (declines, localstripe's quirks) never get here."""

    @functools.wraps(call)
    async def classified(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await call(*args, **kwargs)
        except stripe.StripeError as error:
            decided = classify_stripe_error(error, call.__name__)
            if decided is error:
                raise
            raise decided from error

    return classified


def from_unix(value: int | None) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if value else None


def _id(value: Any) -> str | None:
    """An expandable field: Stripe gives an id, or the object when expanded (localstripe often expands)."""
    if isinstance(value, dict):
        return str(value["id"])
    return str(value) if value else None


def _invoice_subscription(invoice: dict[str, Any]) -> str | None:
    # API versions from 2025-03 moved it under `parent`; localstripe and older versions have it at the top.
    direct = _id(invoice.get("subscription"))
    if direct:
        return direct
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return _id(details.get("subscription"))


def subscription_snapshot(sub: dict[str, Any], now: datetime) -> SubscriptionSnapshot:
    items = (sub.get("items") or {}).get("data") or [{}]
    plan = sub.get("plan") or items[0].get("plan") or items[0].get("price") or {}
    period_end = sub.get("current_period_end") or items[0].get("current_period_end")
    trial_end = from_unix(sub.get("trial_end"))
    status = sub["status"]
    # localstripe: a subscription created with a trial says `incomplete` until its first invoice; Stripe says
    # `trialing`. Nothing has been billed yet, so it is trialing.
    if status == "incomplete" and trial_end is not None and trial_end > now and not sub.get("latest_invoice"):
        status = "trialing"
    return SubscriptionSnapshot(
        id=sub["id"],
        customer_id=_id(sub["customer"]) or "",
        status=status,
        plan_id=_id(plan) or "",
        trial_end=trial_end,
        current_period_end=from_unix(period_end),
        cancel_at_period_end=bool(sub.get("cancel_at_period_end")),
        canceled_at=from_unix(sub.get("canceled_at") or sub.get("ended_at")),
    )


class StripeActivities:
    def __init__(self, client: stripe.StripeClient, settings: Settings, sessions: SessionFactory) -> None:
        self._stripe = client
        self._settings = settings
        self._sessions = sessions
        self._localstripe = settings.uses_localstripe

    # --- customers and cards ---

    @activity.defn(name="stripe_ensure_customer")
    @stripe_failures
    async def ensure_customer(self, request: EnsureCustomer) -> CustomerRef:
        """The family's one Stripe customer: ours if recorded, else Stripe's tagged one, else a new one."""
        async with transaction(self._sessions) as session:
            account = await session.scalar(
                select(BillingAccount).where(col(BillingAccount.parent_id) == request.parent_id)
            )
            if account is not None and account.stripe_customer_id:
                return CustomerRef(billing_account_id=account.id, stripe_customer_id=account.stripe_customer_id)
            parent = await session.get(Parent, request.parent_id)
            if parent is None:
                raise ApplicationError(f"parent {request.parent_id} not found", non_retryable=True)
            email, name = parent.email, f"{parent.first_name} {parent.last_name}"
        customer_id = await self._find_customer(request.parent_id, email)
        if customer_id is None:
            created = await self._stripe.v1.customers.create_async(
                params={"email": email, "name": name, "metadata": {"cedar_parent_id": str(request.parent_id)}},
                options={"idempotency_key": stripe_key("customer", str(request.parent_id))},
            )
            customer_id = created.id
        async with transaction(self._sessions) as session:
            await session.execute(
                insert(BillingAccount)
                .values(
                    id=uuid.uuid4(),
                    parent_id=request.parent_id,
                    stripe_customer_id=customer_id,
                    workflow_id=billing_workflow_id(request.parent_id),
                )
                .on_conflict_do_update(
                    index_elements=["parent_id"],
                    set_={"stripe_customer_id": customer_id},
                    where=col(BillingAccount.stripe_customer_id).is_(None),
                )
            )
            account = await session.scalar(
                select(BillingAccount).where(col(BillingAccount.parent_id) == request.parent_id)
            )
            assert account is not None
            assert account.stripe_customer_id
            return CustomerRef(billing_account_id=account.id, stripe_customer_id=account.stripe_customer_id)

    async def _find_customer(self, parent_id: uuid.UUID, email: str) -> str | None:
        # Listing by email works on Stripe and localstripe alike (localstripe has no search API).
        found = await self._stripe.v1.customers.list_async(params={"email": email, "limit": 100})
        for customer in found.data:
            if customer.to_dict().get("metadata", {}).get("cedar_parent_id") == str(parent_id):
                return str(customer.id)
        return None

    @activity.defn(name="stripe_attach_card")
    @stripe_failures
    async def attach_card(self, request: AttachCard) -> CardResult:
        """Attach the PaymentMethod and make it the customer's default for invoices; a decline is a result."""
        customer = request.stripe_customer_id
        try:
            method = (await self._stripe.v1.payment_methods.retrieve_async(request.payment_method_id)).to_dict()
            if _id(method.get("customer")) != customer:
                await self._stripe.v1.payment_methods.attach_async(
                    request.payment_method_id,
                    params={"customer": customer},
                    options={"idempotency_key": stripe_key("attach", request.payment_method_id, customer)},
                )
        except stripe.CardError as error:
            code, decline = decline_codes(error.code, decline_of(error), last4(method), localstripe=self._localstripe)
            return CardResult(attached=False, failure_code=code, decline_code=decline)
        except stripe.InvalidRequestError as error:
            reason = error.code or error.http_status
            raise ApplicationError(
                f"Stripe refused this payment method ({reason}); collect the card again and send the new one",
                type="CardRejected",
                non_retryable=True,
            ) from error
        # Subscriptions bill the customer's invoice default (localstripe refuses a subscription-level default).
        await self._stripe.v1.customers.update_async(
            customer,
            params={"invoice_settings": {"default_payment_method": request.payment_method_id}},
            options={"idempotency_key": stripe_key("default-card", customer, request.payment_method_id)},
        )
        async with transaction(self._sessions) as session:
            await session.execute(
                update(BillingAccount)
                .where(col(BillingAccount.id) == request.billing_account_id)
                .values(default_payment_method_id=request.payment_method_id, updated_at=datetime.now(UTC))
            )
        return CardResult(attached=True)

    # --- plans and subscriptions ---

    @activity.defn(name="stripe_ensure_plan")
    @stripe_failures
    async def ensure_plan(self, request: EnsurePlan) -> str:
        """Plans (not Prices: localstripe has only plans) with deterministic ids, so a second create finds the first."""
        try:
            return str((await self._stripe.v1.plans.retrieve_async(request.plan_id)).id)
        except stripe.InvalidRequestError as error:
            if error.http_status != 404:
                raise
        try:
            await self._stripe.v1.plans.create_async(
                params={
                    "id": request.plan_id,
                    "amount": request.amount_minor,
                    "currency": request.currency,
                    "interval": request.interval,
                    "product": {"name": f"{request.instrument.title()} lessons, {request.lesson_minutes} min weekly"},
                    "metadata": {"cedar_instrument": request.instrument, "cedar_minutes": str(request.lesson_minutes)},
                },
                options={"idempotency_key": stripe_key("plan", request.plan_id)},
            )
        except stripe.StripeError as error:
            if error.http_status not in (400, 409):  # created meanwhile (Stripe: 400 resource_already_exists)
                raise
        return request.plan_id

    @activity.defn(name="stripe_create_subscription")
    @stripe_failures
    async def create_subscription(self, request: CreateSubscription) -> SubscriptionSnapshot:
        """One subscription per enrollment: ours if recorded, else Stripe's tagged one, else a new one."""
        now = datetime.now(UTC)
        async with self._sessions() as session:
            known = await session.scalar(
                select(col(Subscription.stripe_subscription_id)).where(
                    col(Subscription.enrollment_id) == request.enrollment_id
                )
            )
        sub = await self._retrieve_subscription(known) if known else await self._find_subscription(request)
        if sub is None:
            params: SubscriptionCreateParams = {
                "customer": request.stripe_customer_id,
                "items": [{"plan": request.plan_id}],  # localstripe: `plan`, not `price`
                "metadata": {"cedar_enrollment_id": str(request.enrollment_id)},
            }
            if request.trial_end is not None and request.trial_end > now + MIN_TRIAL:
                params["trial_end"] = int(request.trial_end.timestamp())
            if request.billing_cycle_anchor is not None and request.billing_cycle_anchor > now + MIN_TRIAL:
                # Full periods start on Cedar's boundaries; the stub before the anchor is prorated by time here and
                # brought to the tuition rule's amount while its invoice is a draft (stripe_adjust_invoice).
                params["billing_cycle_anchor"] = int(request.billing_cycle_anchor.timestamp())
                params["proration_behavior"] = "create_prorations"
            created = await self._stripe.v1.subscriptions.create_async(
                params=params, options={"idempotency_key": stripe_key("subscription", str(request.enrollment_id))}
            )
            sub = created.to_dict()
        snapshot = subscription_snapshot(sub, now)
        async with transaction(self._sessions) as session:
            await session.execute(
                insert(Subscription)
                .values(
                    id=uuid.uuid4(),
                    billing_account_id=request.billing_account_id,
                    student_id=request.student_id,
                    enrollment_id=request.enrollment_id,
                    stripe_subscription_id=snapshot.id,
                    stripe_plan_id=request.plan_id,
                    status=snapshot.status,
                    interval=request.interval,
                    amount_minor=request.amount_minor,
                    discount_percent=request.discount_percent,
                    currency=request.currency,
                    trial_end=snapshot.trial_end,
                    current_period_end=snapshot.current_period_end,
                    created_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["enrollment_id"])
            )
        return snapshot

    async def _retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        return (await self._stripe.v1.subscriptions.retrieve_async(subscription_id)).to_dict()

    async def _find_subscription(self, request: CreateSubscription) -> dict[str, Any] | None:
        found = await self._stripe.v1.subscriptions.list_async(
            params={"customer": request.stripe_customer_id, "status": "all", "limit": 100}
        )
        for sub in found.data:
            if sub.to_dict().get("metadata", {}).get("cedar_enrollment_id") == str(request.enrollment_id):
                return sub.to_dict()
        return None

    @activity.defn(name="stripe_fetch_subscription")
    @stripe_failures
    async def fetch_subscription(self, request: SubscriptionRef) -> SubscriptionSnapshot:
        return subscription_snapshot(
            await self._retrieve_subscription(request.stripe_subscription_id), datetime.now(UTC)
        )

    @activity.defn(name="stripe_cancel_subscription")
    @stripe_failures
    async def cancel_subscription(self, request: CancelSubscription) -> SubscriptionSnapshot:
        """Stop billing: at the end of the paid period, or at once with proration (settings.stop_lessons_mode)."""
        sub_id = request.stripe_subscription_id
        current = await self._retrieve_subscription(sub_id)
        immediately = (
            request.immediately if request.immediately is not None else self._settings.stop_lessons_mode == "immediate"
        )
        if current["status"] in ("canceled", "incomplete_expired"):
            return subscription_snapshot(current, datetime.now(UTC))
        if immediately:
            # localstripe: DELETE takes no parameters; Stripe credits the unused time with `prorate`.
            params: SubscriptionCancelParams = (
                {} if self._localstripe else {"prorate": request.prorate, "invoice_now": request.prorate}
            )
            result = await self._stripe.v1.subscriptions.cancel_async(
                sub_id, params=params, options={"idempotency_key": stripe_key("cancel", sub_id)}
            )
        else:
            result = await self._stripe.v1.subscriptions.update_async(
                sub_id,
                params={"cancel_at_period_end": True},
                options={"idempotency_key": stripe_key("cancel-at-period-end", sub_id)},
            )
        return subscription_snapshot(result.to_dict(), datetime.now(UTC))

    @activity.defn(name="stripe_schedule_subscription")
    @stripe_failures
    async def schedule_subscription(self, request: ScheduleSubscription) -> SubscriptionSnapshot:
        """Stripe ends the subscription at the last lesson (``cancel_at``) and bills nothing until the next
        semester's first lesson (``trial_end``), without time-based proration: the tuition rule prices periods.
        A trial restarts Stripe's cycle at its end, so a ``trial_end`` on a period's start keeps Cedar's periods.
        localstripe stores both and acts on neither (no clock); the development renewal follows the lessons."""
        sub_id = request.stripe_subscription_id
        current = await self._retrieve_subscription(sub_id)
        if current["status"] in ("canceled", "incomplete_expired"):
            return subscription_snapshot(current, datetime.now(UTC))
        params: SubscriptionUpdateParams = {}
        if request.cancel_at is not None and request.cancel_at > datetime.now(UTC):
            params["cancel_at"] = int(request.cancel_at.timestamp())
        if request.trial_end is not None and request.trial_end > datetime.now(UTC) + MIN_TRIAL:
            params["trial_end"] = int(request.trial_end.timestamp())
        if not params:
            return subscription_snapshot(current, datetime.now(UTC))
        # A trial set now ends the paid period without a credit, and a trial's end bills nothing for the time before.
        params["proration_behavior"] = "none"
        parts = [sub_id, int(request.cancel_at.timestamp()) if request.cancel_at else "-"]
        parts.append(int(request.trial_end.timestamp()) if request.trial_end else "-")
        result = await self._stripe.v1.subscriptions.update_async(
            sub_id, params=params, options={"idempotency_key": stripe_key("schedule", *parts)}
        )
        return subscription_snapshot(result.to_dict(), datetime.now(UTC))

    # --- invoices and payments ---

    @activity.defn(name="stripe_add_adjustment")
    @stripe_failures
    async def add_adjustment(self, request: CreateAdjustment) -> str:
        """The tuition rule's difference to the plan's price for one period, on the subscription's next invoice,
        once: the item an earlier attempt made is found by ``cedar_adjustment`` (pending, or on an invoice)."""
        tag = f"{request.stripe_subscription_id}:{request.period}"
        pending = await self._stripe.v1.invoice_items.list_async(
            params={"customer": request.stripe_customer_id, "limit": 100}
        )
        for item in pending.data:
            if item.to_dict().get("metadata", {}).get("cedar_adjustment") == tag:
                return str(item.id)
        invoices = await self._stripe.v1.invoices.list_async(
            params={"customer": request.stripe_customer_id, "limit": 100}
        )
        for invoice in invoices.data:
            for line in (invoice.to_dict().get("lines") or {}).get("data") or []:
                if (line.get("metadata") or {}).get("cedar_adjustment") == tag:
                    return _id(line.get("invoice_item")) or str(line["id"])
        created = await self._stripe.v1.invoice_items.create_async(
            params={
                "customer": request.stripe_customer_id,
                "subscription": request.stripe_subscription_id,
                "amount": request.amount_minor,
                "currency": self._settings.currency,
                "description": f"Lessons of {request.period_key}: the tuition rule's amount",
                "metadata": {"cedar_adjustment": tag, "cedar_period_key": request.period_key},
            },
            options={"idempotency_key": stripe_key("adjustment", tag)},
        )
        return str(created.id)

    @activity.defn(name="stripe_adjust_invoice")
    @stripe_failures
    async def adjust_invoice(self, request: AdjustInvoice) -> InvoiceAdjusted:
        """A subscription's draft invoice brought to its lesson period's amount: an item on that invoice
        (``invoice=``) for the difference between the amount and what its lines bill apart from Cedar's one-off
        charges (Stripe's price or its time-prorated stub, and earlier adjustments of the period), once per amount:
        a line tagged ``cedar_adjustment`` with that ``cedar_target`` means it is done. A stop may bring it lower."""
        tag, target = f"{request.stripe_subscription_id}:{request.period_key}", str(request.amount_minor)
        invoice = (await self._stripe.v1.invoices.retrieve_async(request.stripe_invoice_id)).to_dict()
        lines = (invoice.get("lines") or {}).get("data") or []
        mine = [line for line in lines if (line.get("metadata") or {}).get("cedar_adjustment") == tag]
        adjusted = sum(int(line["amount"]) for line in mine)
        for line in mine:
            if (line.get("metadata") or {}).get("cedar_target") == target:
                item = _id(line.get("invoice_item")) or str(line["id"])
                return InvoiceAdjusted(
                    status=invoice["status"], adjustment_minor=adjusted, stripe_invoice_item_id=item, reached=True
                )
        billed = sum(int(line["amount"]) for line in lines if not _cedar_line(line)) + adjusted
        if invoice["status"] != "draft" or billed == request.amount_minor:
            return InvoiceAdjusted(
                status=invoice["status"], adjustment_minor=adjusted, reached=billed == request.amount_minor
            )
        difference = request.amount_minor - billed
        created = await self._stripe.v1.invoice_items.create_async(
            params={
                "customer": request.stripe_customer_id,
                "invoice": request.stripe_invoice_id,
                "amount": difference,
                "currency": invoice.get("currency") or self._settings.currency,
                "description": f"Lessons of {request.period_key}: the tuition rule's amount",
                "metadata": {"cedar_adjustment": tag, "cedar_period_key": request.period_key, "cedar_target": target},
            },
            options={"idempotency_key": stripe_key("adjust", tag, request.stripe_invoice_id, target)},
        )
        return InvoiceAdjusted(
            status="draft", adjustment_minor=adjusted + difference, stripe_invoice_item_id=str(created.id), reached=True
        )

    @activity.defn(name="stripe_create_renewal")
    @stripe_failures
    async def create_renewal(self, request: CreateRenewal) -> str:
        """Development renewals (localstripe has no clock): the subscription's invoice for ``period``, once."""
        existing = await self._stripe.v1.invoices.list_async(
            params={
                "customer": request.stripe_customer_id,
                "subscription": request.stripe_subscription_id,
                "limit": 100,
            }
        )
        metadata = {"cedar_period": str(request.period)}
        if request.period_start is not None:
            # localstripe: no clock dates the lines; the renewal, standing in for it, says which period this bills.
            metadata["cedar_period_start"] = str(int(request.period_start.timestamp()))
        untagged_draft = None
        for invoice in existing.data:
            tags = invoice.to_dict().get("metadata", {})
            if tags.get("cedar_period") == str(request.period):
                return str(invoice.id)
            if not tags and invoice.status == "draft":
                untagged_draft = str(invoice.id)
        # A crash between create and tag (localstripe before devstack kept create's metadata) leaves an untagged draft.
        invoice_id = untagged_draft
        if invoice_id is None:
            created = await self._stripe.v1.invoices.create_async(
                params={
                    "customer": request.stripe_customer_id,
                    "subscription": request.stripe_subscription_id,
                    "metadata": metadata,
                },
                options={"idempotency_key": stripe_key("renewal", request.stripe_subscription_id, request.period)},
            )
            invoice_id = str(created.id)
        await self._stripe.v1.invoices.update_async(invoice_id, params={"metadata": metadata})
        return invoice_id

    @activity.defn(name="stripe_add_invoice_item")
    @stripe_failures
    async def add_invoice_item(self, request: CreateInvoiceItem) -> str:
        """A one-off charge (or, negative, a credit) pending on the customer until its next invoice, once per
        request: the item an earlier attempt made is found by its ``cedar_charge_id`` first."""
        tag = str(request.request_id)
        # localstripe lists only pending items; an item already invoiced is found on the invoices below.
        pending = await self._stripe.v1.invoice_items.list_async(
            params={"customer": request.stripe_customer_id, "limit": 100}
        )
        for item in pending.data:
            if item.to_dict().get("metadata", {}).get("cedar_charge_id") == tag:
                return str(item.id)
        invoices = await self._stripe.v1.invoices.list_async(
            params={"customer": request.stripe_customer_id, "limit": 100}
        )
        for invoice in invoices.data:
            for line in charge_lines(invoice.to_dict()):
                if line.charge_id == tag:
                    return line.stripe_invoice_item_id
        created = await self._stripe.v1.invoice_items.create_async(
            params={
                "customer": request.stripe_customer_id,
                "amount": request.amount_minor,
                "currency": self._settings.currency,
                "description": request.description,
                "metadata": {"cedar_charge_id": tag},
            },
            options={"idempotency_key": stripe_key("charge", tag)},
        )
        return str(created.id)

    @activity.defn(name="stripe_create_charge_invoice")
    @stripe_failures
    async def create_charge_invoice(self, request: ChargeInvoice) -> str:
        """The invoice of a "now" charge, once: the customer's pending items (the charge's among them) invoiced
        apart from any subscription; the workflow then pays it like any invoice."""
        tag = str(request.request_id)
        invoices = await self._stripe.v1.invoices.list_async(
            params={"customer": request.stripe_customer_id, "limit": 100}
        )
        for invoice in invoices.data:
            if any(line.charge_id == tag for line in charge_lines(invoice.to_dict())):
                return str(invoice.id)
        created = await self._stripe.v1.invoices.create_async(
            params={
                "customer": request.stripe_customer_id,
                "pending_invoice_items_behavior": "include",
                "metadata": {"cedar_charge_id": tag},
            },
            options={"idempotency_key": stripe_key("charge-invoice", tag)},
        )
        return str(created.id)

    @activity.defn(name="stripe_fetch_invoice")
    @stripe_failures
    async def fetch_invoice(self, request: InvoiceRef) -> InvoiceSnapshot:
        invoice = (await self._stripe.v1.invoices.retrieve_async(request.stripe_invoice_id)).to_dict()
        charge, intent_status = await self._invoice_charge(invoice)
        return InvoiceSnapshot(
            id=invoice["id"],
            customer_id=_id(invoice["customer"]) or "",
            subscription_id=_invoice_subscription(invoice),
            status=invoice["status"],
            amount_due_minor=int(invoice.get("amount_due") or 0),
            amount_paid_minor=int(invoice.get("amount_paid") or 0),
            currency=invoice.get("currency") or self._settings.currency,
            period_start=from_unix(invoice.get("period_start")),
            period_end=from_unix(invoice.get("period_end")),
            charge=await self._charge_snapshot(charge) if charge else None,
            attempt_count=int(invoice.get("attempt_count") or 0),
            confirmation_needed=invoice["status"] == "open" and intent_status == "requires_action",
            has_hosted_page=bool(invoice.get("hosted_invoice_url")),
            charge_lines=charge_lines(invoice),
            cycle_start=cycle_start(invoice),
            adjustments=[
                tag
                for line in (invoice.get("lines") or {}).get("data") or []
                if (tag := (line.get("metadata") or {}).get("cedar_adjustment"))
            ],
        )

    async def _invoice_charge(self, invoice: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """The invoice's latest charge, if any, and (when there is none) its payment intent's status."""
        charge_id = _id(invoice.get("charge"))
        if charge_id is None:
            intent_id = _id(invoice.get("payment_intent")) or await self._invoice_payment_intent(invoice)
            if intent_id is None:
                return None, None
            intent = (await self._stripe.v1.payment_intents.retrieve_async(intent_id)).to_dict()
            charge_id = _id(intent.get("latest_charge"))
            if charge_id is None:
                return None, intent.get("status")
        charge = await self._stripe.v1.charges.retrieve_async(charge_id, params={"expand": ["balance_transaction"]})
        return charge.to_dict(), None

    async def _invoice_payment_intent(self, invoice: dict[str, Any]) -> str | None:
        # Stripe API versions from 2025-03 link an invoice to its PaymentIntents through invoice payments.
        if self._localstripe or invoice["status"] == "draft":
            return None
        payments = await self._stripe.v1.invoice_payments.list_async(params={"invoice": invoice["id"], "limit": 10})
        for payment in payments.data:
            intent = _id((payment.to_dict().get("payment") or {}).get("payment_intent"))
            if intent:
                return intent
        return None

    async def _charge_snapshot(self, charge: dict[str, Any]) -> ChargeSnapshot:
        amount = int(charge["amount"])
        txn = charge.get("balance_transaction")
        # The fee Stripe really kept, from the balance transaction; localstripe's has no fee: estimate it.
        if isinstance(txn, dict) and txn.get("fee_details"):
            fee = int(txn["fee"])
        else:
            fee = estimate_fee(amount, self._settings.stripe_fee_percent_bps, self._settings.stripe_fee_fixed_minor)
        failure_code, decline_code = charge.get("failure_code"), (charge.get("outcome") or {}).get("reason")
        if charge["status"] == "failed":
            method = await self._payment_method(charge) if self._localstripe else {}
            failure_code, decline_code = decline_codes(
                failure_code, decline_code, last4(method), localstripe=self._localstripe
            )
        return ChargeSnapshot(
            id=charge["id"],
            status=charge["status"],
            amount_minor=amount,
            amount_refunded_minor=int(charge.get("amount_refunded") or 0),
            fee_minor=fee if charge["status"] == "succeeded" else 0,
            payment_intent_id=_id(charge.get("payment_intent")),
            failure_code=failure_code,
            decline_code=decline_code,
            created_at=from_unix(charge.get("created")),
        )

    async def _payment_method(self, charge: dict[str, Any]) -> dict[str, Any]:
        method_id = _id(charge.get("payment_method"))
        if not method_id:
            return {}
        return (await self._stripe.v1.payment_methods.retrieve_async(method_id)).to_dict()

    @activity.defn(name="stripe_pay_invoice")
    @stripe_failures
    async def pay_invoice(self, request: PayInvoice) -> PayOutcome:
        """Collect an invoice: re-read it first (never charge blindly after an unknown outcome), then pay it."""
        invoice = await self._stripe.v1.invoices.retrieve_async(request.stripe_invoice_id)
        if invoice.status == "paid":
            return PayOutcome(status="paid")
        if invoice.status in ("void", "uncollectible"):
            return PayOutcome(status="closed")
        intent_id = _id(invoice.to_dict().get("payment_intent"))
        if intent_id:
            intent = await self._stripe.v1.payment_intents.retrieve_async(intent_id)
            if intent.status == "processing":
                return PayOutcome(status="pending")
        try:
            invoice = await self._stripe.v1.invoices.pay_async(
                request.stripe_invoice_id,
                options={"idempotency_key": stripe_key("pay", request.stripe_invoice_id, request.attempt)},
            )
        except stripe.CardError as error:
            if error.code == AUTHENTICATION_REQUIRED:  # Stripe's answer when the bank wants the parent to confirm
                return await self._needs_confirmation(request)
            return PayOutcome(
                status="failed",
                failure=PaymentFailure(
                    attempt=request.attempt, failure_code=error.code, decline_code=decline_of(error)
                ),
            )
        except stripe.InvalidRequestError as error:
            if error.http_status == 400 and "already paid" in str(error.user_message or error):
                return PayOutcome(status="paid")
            if error.http_status == 404 or error.code in ("invoice_no_payment_method_types", "resource_missing"):
                # No card on file (its attach was declined): a failed attempt, as Stripe reports it.
                return PayOutcome(
                    status="failed", failure=PaymentFailure(attempt=request.attempt, failure_code="no_payment_method")
                )
            raise
        if invoice.status == "paid":
            return PayOutcome(status="paid")
        # localstripe answers a declined invoice payment, and one the bank wants confirmed, with the open invoice
        # instead of a card error; the payment intent tells them apart.
        intent_id = _id(invoice.to_dict().get("payment_intent"))
        if intent_id and (await self._stripe.v1.payment_intents.retrieve_async(intent_id)).status == "requires_action":
            return await self._needs_confirmation(request)
        return PayOutcome(status="failed", failure=PaymentFailure(attempt=request.attempt))

    async def _needs_confirmation(self, request: PayInvoice) -> PayOutcome:
        """An attempt the parent's bank wants confirmed: not a decline, and no use retrying without the parent."""
        invoice = (await self._stripe.v1.invoices.retrieve_async(request.stripe_invoice_id)).to_dict()
        failure = PaymentFailure(
            attempt=request.attempt,
            failure_code=AUTHENTICATION_REQUIRED,
            confirm_online=bool(invoice.get("hosted_invoice_url")),
        )
        return PayOutcome(status="failed", failure=failure)

    @activity.defn(name="stripe_close_invoice")
    @stripe_failures
    async def close_invoice(self, request: InvoiceRef) -> str:
        """Stop collecting an invoice (write-off): uncollectible in Stripe; localstripe lacks that, so void."""
        invoice = await self._stripe.v1.invoices.retrieve_async(request.stripe_invoice_id)
        if invoice.status not in ("open", "draft"):
            return str(invoice.status)
        if not self._localstripe:
            result = await self._stripe.v1.invoices.mark_uncollectible_async(request.stripe_invoice_id)
            return str(result.status)
        try:
            result = await self._stripe.v1.invoices.void_invoice_async(request.stripe_invoice_id)
        except stripe.InvalidRequestError:  # localstripe cannot void an invoice that was never attempted
            return str(invoice.status)
        return str(result.status)

    @activity.defn(name="stripe_refund")
    @stripe_failures
    async def refund(self, request: CreateRefund) -> RefundSnapshot:
        """A refund for one request id: Stripe's tagged refund when an earlier attempt made it, else a new one."""
        tag = str(request.request_id)
        existing = await self._stripe.v1.refunds.list_async(params={"charge": request.stripe_charge_id, "limit": 100})
        for refund in existing.data:
            if refund.to_dict().get("metadata", {}).get("cedar_refund_request_id") == tag:
                return RefundSnapshot(id=refund.id, charge_id=request.stripe_charge_id, amount_minor=refund.amount)
        try:
            refund = await self._stripe.v1.refunds.create_async(
                params={
                    "charge": request.stripe_charge_id,
                    "amount": request.amount_minor,
                    "metadata": {"cedar_refund_request_id": tag},
                },
                options={"idempotency_key": stripe_key("refund", tag)},
            )
        except stripe.InvalidRequestError as error:
            raise ApplicationError(
                f"Stripe refused the refund: {error.user_message or error.code}",
                type="RefundRefused",
                non_retryable=True,
            ) from error
        return RefundSnapshot(id=refund.id, charge_id=request.stripe_charge_id, amount_minor=refund.amount)

    @activity.defn(name="stripe_list_refunds")
    @stripe_failures
    async def list_refunds(self, request: ChargeRef) -> list[RefundSnapshot]:
        """The charge's refunds as Stripe holds them now: also those made outside Cedar (the dashboard)."""
        page = await self._stripe.v1.refunds.list_async(params={"charge": request.stripe_charge_id, "limit": 100})
        return [
            RefundSnapshot(id=refund.id, charge_id=request.stripe_charge_id, amount_minor=refund.amount)
            for refund in page.data
            if refund.to_dict().get("status") in (None, "succeeded", "pending")
        ]


def _cedar_line(line: dict[str, Any]) -> bool:
    """A line Cedar put there: a one-off charge or credit, or a lesson period's adjustment."""
    metadata = line.get("metadata") or {}
    return bool(metadata.get("cedar_charge_id") or metadata.get("cedar_adjustment"))


def _subscription_line(line: dict[str, Any]) -> bool:
    # localstripe and older API versions say `type`; versions from 2025-03 give the line's `parent`.
    parent = (line.get("parent") or {}).get("type")
    return line.get("type") == "subscription" or parent == "subscription_item_details" or bool(line.get("proration"))


def cycle_start(invoice: dict[str, Any]) -> datetime | None:
    """Where the period a subscription invoice bills starts: its subscription lines' period (the stub's prorated
    line starts at the trial's end), or what a development renewal stamped (``cedar_period_start``)."""
    if not _invoice_subscription(invoice):
        return None
    stamped = (invoice.get("metadata") or {}).get("cedar_period_start")
    if stamped:
        return from_unix(int(stamped))
    starts = [
        int(line["period"]["start"])
        for line in (invoice.get("lines") or {}).get("data") or []
        if _subscription_line(line) and not _cedar_line(line) and (line.get("period") or {}).get("start")
    ]
    return from_unix(min(starts)) if starts else None


def charge_lines(invoice: dict[str, Any]) -> list[ChargeLine]:
    """Cedar's one-off charges and credits on an invoice: its lines carrying the item's ``cedar_charge_id``."""
    found: list[ChargeLine] = []
    for line in (invoice.get("lines") or {}).get("data") or []:
        tag = (line.get("metadata") or {}).get("cedar_charge_id")
        item = _id(line.get("invoice_item")) or _id(line.get("id"))
        if tag and item:
            found.append(ChargeLine(stripe_invoice_item_id=item, charge_id=tag, amount_minor=int(line["amount"])))
    return found


def decline_codes(
    code: str | None, decline: str | None, last4: str | None, *, localstripe: bool
) -> tuple[str | None, str | None]:
    """(failure code, decline code) of a refused card: Stripe's, or the test card's where localstripe gives none."""
    if localstripe and decline is None and last4 in TEST_CARD_DECLINES:
        return TEST_CARD_DECLINES[last4]
    return code, decline


def decline_of(error: stripe.StripeError) -> str | None:
    body = cast(dict[str, Any], error.json_body or {})
    return (body.get("error") or {}).get("decline_code")


def last4(method: dict[str, Any]) -> str | None:
    return ((method or {}).get("card") or {}).get("last4")
