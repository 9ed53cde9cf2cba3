"""Billing's database work: the mirror of Stripe (accounts, subscriptions, invoices, payments, refunds), the
ledger postings each money event makes, the event inbox's statuses and the hand-off to dunning.

Every method is idempotent: rows are keyed by Stripe ids (unique constraints), journal entries by their
idempotency key, and statuses only move forward, so replaying an event or an activity changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, time
from typing import Any

from sqlalchemy import String, func, select, update
from sqlalchemy.dialects.postgresql import Insert, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio import activity
from temporalio.client import Client
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from core.contracts.billing import (
    ApplyInvoice,
    BillingConfig,
    BillingConfigRequest,
    ChargeRefunds,
    ChargeSnapshot,
    CreateRefund,
    CycleAnchor,
    CycleAnchorRequest,
    EventOutcome,
    EventRef,
    InvoiceApplied,
    InvoicePaymentRef,
    InvoicePeriod,
    InvoicePeriodRequest,
    InvoiceSnapshot,
    LessonGap,
    LessonGapRequest,
    LessonPlan,
    LessonPlanRequest,
    NotifyDunning,
    PaymentFailure,
    PeriodPlan,
    PrepareRefund,
    Quote,
    QuoteRequest,
    RecordRefund,
    RefundSnapshot,
    SendReceipt,
    SubscriptionSnapshot,
    WriteOffInvoice,
)
from core.contracts.dunning import (
    BILLING_SIGNALS,
    DUNNING_SUMMARY,
    FAMILY_DUNNING_WORKFLOW,
    SIGNAL_INVOICE_FAILED,
    FamilyDunningInput,
)
from core.contracts.scheduled import RecognizeLessons
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.temporal import dunning_workflow_id
from domain.billing_rules import (
    discounted_amount,
    invoice_status_after,
    lesson_share,
    mirrored_invoice_status,
    plan_id,
    sibling_discount_percent,
)
from domain.calendar import local_to_utc
from domain.ledger import EntryKind, LedgerEvent, entries_for, entry_key
from domain.tuition import (
    cycle_anchor,
    lesson_earnings,
    lesson_gap,
    lesson_periods,
    period_amounts,
    period_bounds,
    period_instants,
    period_key,
    period_last_lesson_end,
)
from models import (
    BillingAccount,
    Invoice,
    JournalEntry,
    Lesson,
    LessonKind,
    LessonRate,
    LessonStatus,
    Payment,
    Posting,
    Refund,
    StripeEvent,
    Subscription,
)

LIVE_SUBSCRIPTION = ("trialing", "active", "past_due", "incomplete", "unpaid")


async def post_events(
    session: AsyncSession, billing_account_id: uuid.UUID | None, events: Sequence[LedgerEvent]
) -> int:
    """Writes the entries of ``events`` that are not in the journal yet; returns how many were new."""
    posted = 0
    for event in events:
        for entry in entries_for(event):
            entry_id = await session.scalar(
                insert(JournalEntry)
                .values(
                    id=uuid.uuid4(),
                    idempotency_key=entry.idempotency_key,
                    kind=entry.kind.value,
                    memo=entry.memo,
                    billing_account_id=billing_account_id,
                    occurred_at=datetime.now(UTC),
                    created_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing(index_elements=["idempotency_key"])
                .returning(col(JournalEntry.id))
            )
            if entry_id is None:
                continue
            session.add_all(
                Posting(entry_id=entry_id, account_code=p.account.value, amount_minor=p.amount) for p in entry.postings
            )
            posted += 1
    await session.flush()
    return posted


async def entry_exists(session: AsyncSession, key: str) -> bool:
    return (
        await session.scalar(select(col(JournalEntry.id)).where(col(JournalEntry.idempotency_key) == key)) is not None
    )


async def trial_balance(session: AsyncSession) -> dict[str, int]:
    rows = await session.execute(
        select(col(Posting.account_code), func.sum(col(Posting.amount_minor))).group_by(col(Posting.account_code))
    )
    return {code: int(total) for code, total in rows.all()}


class BillingActivities:
    def __init__(self, settings: Settings, sessions: SessionFactory, temporal: Client) -> None:
        self._settings = settings
        self._sessions = sessions
        self._temporal = temporal

    @activity.defn(name="billing_config")
    async def config(self, _: BillingConfigRequest) -> BillingConfig:
        """The settings the workflow needs (a workflow must not read the environment itself)."""
        return BillingConfig(
            continue_as_new_after_commands=self._settings.billing_continue_as_new_events,
            stripe_task_queue=self._settings.stripe_task_queue or None,
            command_retry_after=self._settings.billing_command_retry_after,
            command_attempts=self._settings.billing_command_attempts,
            email_attempts=self._settings.billing_email_attempts,
        )

    @activity.defn(name="billing_quote_subscription")
    async def quote_subscription(self, request: QuoteRequest) -> Quote:
        """The price from the rates table, less the sibling discount for the family's second and later child, and
        the school's registration fee (the workflow must not read settings itself)."""
        async with self._sessions() as session:
            rate = await session.scalar(
                select(LessonRate).where(
                    col(LessonRate.instrument) == request.instrument, col(LessonRate.minutes) == request.lesson_minutes
                )
            )
            if rate is None:
                raise ApplicationError(
                    f"no rate for {request.instrument} {request.lesson_minutes} min", type="NoRate", non_retryable=True
                )
            other_children = await session.scalar(
                select(func.count(func.distinct(col(Subscription.student_id)))).where(
                    col(Subscription.billing_account_id) == request.billing_account_id,
                    col(Subscription.student_id) != request.student_id,
                    col(Subscription.status).in_(LIVE_SUBSCRIPTION),
                )
            )
        base = rate.weekly_price_minor if request.billing_interval == "week" else rate.monthly_price_minor
        percent = sibling_discount_percent(int(other_children or 0), self._settings.sibling_discount_percent)
        amount = discounted_amount(base, percent)
        return Quote(
            plan_id=plan_id(request.instrument, request.lesson_minutes, request.billing_interval, amount),
            amount_minor=amount,
            base_amount_minor=base,
            discount_percent=percent,
            interval=request.billing_interval,
            currency=rate.currency,
            registration_fee_minor=self._settings.registration_fee_minor,
            registration_fee_when=self._settings.registration_fee_when,
        )

    @activity.defn(name="billing_apply_invoice")
    async def apply_invoice(self, request: ApplyInvoice) -> InvoiceApplied:
        """Mirror an invoice as just re-read from Stripe, and post what it newly means to the ledger."""
        snap, now = request.invoice, datetime.now(UTC)
        async with transaction(self._sessions) as session:
            account = await session.scalar(
                select(BillingAccount).where(col(BillingAccount.stripe_customer_id) == snap.customer_id)
            )
            if account is None:
                return InvoiceApplied(invoice_id=None)
            row = await self._invoice_row(session, account.id, snap)
            previous = row.status
            failure = await self._record_failure(session, account.id, row, snap, request.failure, now)
            row.status = invoice_status_after(
                row.status, mirrored_invoice_status(snap.status, row.first_failed_at is not None)
            )
            row.amount_due_minor = snap.amount_due_minor
            row.amount_paid_minor = max(row.amount_paid_minor, snap.amount_paid_minor)
            row.updated_at = now
            events: list[LedgerEvent] = []
            if snap.status in ("open", "paid", "uncollectible"):
                events.append(
                    LedgerEvent(kind="invoice_finalized", source_id=snap.id, amount_minor=snap.amount_due_minor)
                )
            elif (
                snap.status == "void"
                and previous != "uncollectible"  # a written-off invoice is bad debt already
                and await entry_exists(session, entry_key(EntryKind.INVOICE_FINALIZED, snap.id))
            ):
                events.append(LedgerEvent(kind="invoice_voided", source_id=snap.id, amount_minor=snap.amount_due_minor))
            payment_id = None
            if snap.status == "paid" and snap.charge is not None and snap.charge.status == "succeeded":
                payment_id = await self._record_payment(session, account.id, row, snap)
                row.paid_at = row.paid_at or snap.charge.created_at or now
                events.append(
                    LedgerEvent(
                        kind="payment_received",
                        source_id=snap.charge.id,
                        amount_minor=snap.charge.amount_minor,
                        fee_minor=snap.charge.fee_minor,
                    )
                )
            if snap.status == "paid":
                # One-off charges are earned, and credits given, once the invoice carrying them is paid.
                events += [
                    LedgerEvent(
                        kind="charge_earned", source_id=line.stripe_invoice_item_id, amount_minor=line.amount_minor
                    )
                    if line.amount_minor > 0
                    else LedgerEvent(
                        kind="credit_given", source_id=line.stripe_invoice_item_id, amount_minor=-line.amount_minor
                    )
                    for line in snap.charge_lines
                ]
            await post_events(session, account.id, events)
            await self._follow_subscription(session, row, failure is not None)
            return InvoiceApplied(
                invoice_id=row.id,
                billing_account_id=account.id,
                status=row.status,
                amount_due_minor=row.amount_due_minor,
                amount_paid_minor=row.amount_paid_minor,
                attempt_count=row.attempt_count,
                newly_paid=row.status == "paid" and previous != "paid",
                paid_at=row.paid_at,
                payment_id=payment_id,
                new_failure=failure,
                first_failed_at=row.first_failed_at,
            )

    async def _invoice_row(self, session: AsyncSession, account_id: uuid.UUID, snap: InvoiceSnapshot) -> Invoice:
        subscription_id = None
        if snap.subscription_id:
            subscription_id = await session.scalar(
                select(col(Subscription.id)).where(col(Subscription.stripe_subscription_id) == snap.subscription_id)
            )
        await session.execute(
            insert(Invoice)
            .values(
                id=uuid.uuid4(),
                billing_account_id=account_id,
                subscription_id=subscription_id,
                stripe_invoice_id=snap.id,
                status="draft",
                amount_due_minor=snap.amount_due_minor,
                currency=snap.currency,
                period_start=snap.period_start,
                period_end=snap.period_end,
                attempt_count=0,
                amount_paid_minor=0,
                created_at=datetime.now(UTC),
                updated_at=datetime.now(UTC),
            )
            .on_conflict_do_nothing(index_elements=["stripe_invoice_id"])
        )
        row = await session.scalar(select(Invoice).where(col(Invoice.stripe_invoice_id) == snap.id).with_for_update())
        assert row is not None
        return row

    async def _record_failure(
        self,
        session: AsyncSession,
        account_id: uuid.UUID,
        row: Invoice,
        snap: InvoiceSnapshot,
        reported: PaymentFailure | None,
        now: datetime,
    ) -> PaymentFailure | None:
        """A failed attempt, once: keyed by its failed charge, or by the attempt number when there is no charge."""
        charge = snap.charge
        if snap.status != "open" or (reported is None and (charge is None or charge.status != "failed")):
            return None
        if charge is not None and charge.status == "failed":
            inserted = await session.scalar(
                _charge_row(
                    account_id,
                    row.id,
                    snap.currency,
                    charge,
                    now,
                    status="failed",
                    fee_minor=0,
                    failure_code=charge.failure_code,
                    decline_code=charge.decline_code,
                ).returning(col(Payment.id))
            )
            is_new = inserted is not None
            failure = PaymentFailure(
                attempt=row.attempt_count + 1,
                failure_code=charge.failure_code,
                decline_code=charge.decline_code,
            )
        else:
            assert reported is not None
            is_new = reported.attempt > row.attempt_count
            failure = reported.model_copy(update={"attempt": max(reported.attempt, row.attempt_count + 1)})
        if not is_new:
            return None
        row.attempt_count = failure.attempt
        row.first_failed_at = row.first_failed_at or now
        return failure

    async def _record_payment(
        self, session: AsyncSession, account_id: uuid.UUID, row: Invoice, snap: InvoiceSnapshot
    ) -> uuid.UUID:
        charge = snap.charge
        assert charge is not None
        await session.execute(
            _charge_row(
                account_id,
                row.id,
                snap.currency,
                charge,
                datetime.now(UTC),
                status="succeeded",
                fee_minor=charge.fee_minor,
            )
        )
        payment_id = await session.scalar(select(col(Payment.id)).where(col(Payment.stripe_charge_id) == charge.id))
        assert payment_id is not None
        return payment_id

    async def _follow_subscription(self, session: AsyncSession, row: Invoice, failed_now: bool) -> None:
        """The subscription follows its latest invoice: past due on a failure, active once paid."""
        if row.subscription_id is None:
            return
        status = "past_due" if failed_now else "active" if row.status == "paid" else None
        if status is None:
            return
        await session.execute(
            update(Subscription)
            .where(col(Subscription.id) == row.subscription_id, col(Subscription.status).in_(LIVE_SUBSCRIPTION))
            .values(status=status, updated_at=datetime.now(UTC))
        )

    @activity.defn(name="billing_apply_subscription")
    async def apply_subscription(self, snap: SubscriptionSnapshot) -> str:
        """Mirror a subscription as just re-read from Stripe; a cancelled one stays cancelled."""
        values: dict[str, object] = {
            "cancel_at_period_end": snap.cancel_at_period_end,
            "current_period_end": snap.current_period_end,
            "updated_at": datetime.now(UTC),
        }
        # localstripe: a subscription that had a trial reports `incomplete` even once billed; keep ours then.
        if snap.status != "incomplete":
            values["status"] = snap.status
        if snap.canceled_at is not None:
            values["canceled_at"] = snap.canceled_at
        async with transaction(self._sessions) as session:
            await session.execute(
                update(Subscription)
                .where(col(Subscription.stripe_subscription_id) == snap.id, col(Subscription.status) != "canceled")
                .values(**values)
            )
            status = await session.scalar(
                select(col(Subscription.status)).where(col(Subscription.stripe_subscription_id) == snap.id)
            )
        return status or ""

    @activity.defn(name="billing_lesson_plan")
    async def lesson_plan(self, request: LessonPlanRequest) -> LessonPlan:
        """The subscription's lesson periods (its enrollment's regular lessons not cancelled, those ending by
        ``until`` when given) and each one's amount by the school's tuition rule."""
        async with self._sessions() as session:
            sub = await session.scalar(
                select(Subscription).where(col(Subscription.enrollment_id) == request.enrollment_id)
            )
            if sub is None:
                raise ApplicationError("no subscription for this enrollment", type="NotFound", non_retryable=True)
            booked = await session.scalar(
                select(func.count()).where(
                    col(Lesson.enrollment_id) == request.enrollment_id, col(Lesson.kind) == LessonKind.regular
                )
            )
            rows = (
                await session.execute(
                    select(col(Lesson.starts_at), col(Lesson.ends_at)).where(*_held_lessons(request.enrollment_id))
                )
            ).all()
        rule = self._settings.tuition_rule
        lessons = [(start, end) for start, end in rows if request.until is None or end <= request.until]
        periods = lesson_periods((start for start, _ in lessons), sub.interval, self._settings.timezone)
        amounts = period_amounts(rule, sub.amount_minor, sub.interval, periods)
        return LessonPlan(
            follows_lessons=bool(booked),
            rule=rule,
            price_minor=sub.amount_minor,
            interval=sub.interval,
            periods=[
                PeriodPlan(key=p.key, start=p.start, end=p.end, lessons=p.lessons, amount_minor=amount)
                for p, amount in zip(periods, amounts, strict=True)
            ],
            first_lesson_starts_at=min((start for start, _ in lessons), default=None),
            last_lesson_ends_at=max((end for _, end in lessons), default=None),
        )

    @activity.defn(name="billing_cycle_anchor")
    async def cycle_anchor_of(self, request: CycleAnchorRequest) -> CycleAnchor:
        """The end of the first booked lesson's period: Stripe's cycle starts its full periods there."""
        async with self._sessions() as session:
            first = await session.scalar(
                select(func.min(col(Lesson.starts_at))).where(*_held_lessons(request.enrollment_id))
            )
        if first is None:
            return CycleAnchor()
        return CycleAnchor(anchor=cycle_anchor(first, request.interval, self._settings.timezone))

    @activity.defn(name="billing_invoice_period")
    async def invoice_period(self, request: InvoicePeriodRequest) -> InvoicePeriod:
        """The lesson period holding ``at`` (where a Stripe invoice's period starts) and its amount by the tuition
        rule among all the subscription's periods: what that invoice must total."""
        plan = await self.lesson_plan(LessonPlanRequest(enrollment_id=request.enrollment_id, until=request.until))
        tz = self._settings.timezone
        start, _ = period_bounds(request.at, plan.interval, tz)
        starts_at, ends_at = period_instants(request.at, plan.interval, tz)
        held = next((p for p in plan.periods if p.start == start), None)
        following = next((p for p in plan.periods if p.start >= start), None)
        return InvoicePeriod(
            follows_lessons=plan.follows_lessons,
            key=held.key if held else period_key(request.at, plan.interval, tz),
            start=start,
            starts_at=starts_at,
            ends_at=ends_at,
            lessons=held.lessons if held else 0,
            amount_minor=held.amount_minor if held else 0,
            later_lessons=following is not None,
            next_starts_at=local_to_utc(following.start, time(0), tz) if following else None,
        )

    @activity.defn(name="billing_lesson_gap")
    async def lesson_gap_of(self, request: LessonGapRequest) -> LessonGap:
        """The first stretch of whole periods without lessons of the enrollment (its held regular lessons, those
        ending by ``until`` when given) not over at ``after``: when billing pauses and when it resumes; and when
        the lesson period in progress at ``after`` has given its last lesson (billing looks again then)."""
        async with self._sessions() as session:
            interval = await session.scalar(
                select(col(Subscription.interval)).where(col(Subscription.enrollment_id) == request.enrollment_id)
            )
            if interval is None:
                raise ApplicationError("no subscription for this enrollment", type="NotFound", non_retryable=True)
            rows = (
                await session.execute(
                    select(col(Lesson.starts_at), col(Lesson.ends_at)).where(*_held_lessons(request.enrollment_id))
                )
            ).all()
        lessons = [(start, end) for start, end in rows if request.until is None or end <= request.until]
        tz = self._settings.timezone
        gap = lesson_gap(lessons, request.after, interval, tz)
        return LessonGap(
            begins_at=gap.begins_at if gap else None,
            resumes_at=gap.resumes_at if gap else None,
            checks_at=period_last_lesson_end(lessons, request.after, interval, tz),
        )

    @activity.defn(name="billing_invoice_payment")
    async def invoice_payment(self, request: InvoicePaymentRef) -> uuid.UUID | None:
        """The succeeded payment of an invoice, if it has one (a period's payment to refund from)."""
        async with self._sessions() as session:
            return await session.scalar(
                select(col(Payment.id))
                .join(Invoice, col(Invoice.id) == col(Payment.invoice_id))
                .where(
                    col(Invoice.stripe_invoice_id) == request.stripe_invoice_id,
                    col(Payment.status).in_(["succeeded", "partially_refunded"]),
                )
                .limit(1)
            )

    @activity.defn(name="billing_prepare_refund")
    async def prepare_refund(self, request: PrepareRefund) -> CreateRefund:
        """Checks a refund request against the family's payment before anything reaches Stripe."""
        async with self._sessions() as session:
            payment = await session.get(Payment, request.payment_id)
        if payment is None or payment.billing_account_id != request.billing_account_id:
            raise ApplicationError("payment not found for this family", type="NotFound", non_retryable=True)
        if payment.status not in ("succeeded", "partially_refunded") or not payment.stripe_charge_id:
            raise ApplicationError(
                f"a {payment.status} payment cannot be refunded", type="Conflict", non_retryable=True
            )
        left = payment.amount_minor - payment.amount_refunded_minor
        amount = left if request.amount_minor is None else request.amount_minor
        if not 0 < amount <= left:
            raise ApplicationError(
                f"refund must be between 1 and {left} (what is left of the payment)",
                type="Conflict",
                non_retryable=True,
            )
        return CreateRefund(
            request_id=request.request_id, stripe_charge_id=payment.stripe_charge_id, amount_minor=amount
        )

    @activity.defn(name="billing_record_refund")
    async def record_refund(self, request: RecordRefund) -> uuid.UUID:
        """The refund row and its entry (Dr refunds / Cr clearing; Stripe keeps its fee), once per Stripe refund."""
        async with transaction(self._sessions) as session:
            payment = await session.scalar(
                select(Payment).where(col(Payment.id) == request.payment_id).with_for_update()
            )
            assert payment is not None
            await _write_refund(session, payment, request.refund, request.reason, unearned=request.unearned)
            refund_id = await session.scalar(
                select(col(Refund.id)).where(col(Refund.stripe_refund_id) == request.refund.id)
            )
            assert refund_id is not None
            return refund_id

    @activity.defn(name="billing_record_charge_refunds")
    async def record_charge_refunds(self, request: ChargeRefunds) -> int:
        """Mirrors the refunds Stripe holds for a charge of ours, wherever they were made; returns how many were
        new. Refunds Cedar made are recorded already (same Stripe refund id) and change nothing."""
        async with transaction(self._sessions) as session:
            payment = await session.scalar(
                select(Payment).where(col(Payment.stripe_charge_id) == request.stripe_charge_id).with_for_update()
            )
            if payment is None:
                return 0  # not a payment of ours (its invoice sync, which runs first, found none)
            new = 0
            for refund in request.refunds:
                new += await _write_refund(session, payment, refund, "refunded in Stripe, outside Cedar")
            return new

    @activity.defn(name="billing_write_off_invoice")
    async def write_off_invoice(self, request: WriteOffInvoice) -> int:
        """Give up on an invoice: uncollectible, and what is still owed goes to bad debt (once)."""
        async with transaction(self._sessions) as session:
            row = await session.scalar(
                select(Invoice).where(col(Invoice.stripe_invoice_id) == request.stripe_invoice_id).with_for_update()
            )
            if row is None or row.status in ("paid", "void"):
                return 0
            owed = row.amount_due_minor - row.amount_paid_minor
            row.status, row.updated_at = "uncollectible", datetime.now(UTC)
            if owed > 0 and await entry_exists(session, entry_key(EntryKind.INVOICE_FINALIZED, row.stripe_invoice_id)):
                event = LedgerEvent(kind="written_off", source_id=row.stripe_invoice_id, amount_minor=owed)
                await post_events(session, row.billing_account_id, [event])
            return owed

    @activity.defn(name="billing_recognize_lessons")
    async def recognize_lessons(self, request: RecognizeLessons) -> int:
        """Completed lessons earn their share of the subscription (Dr deferred revenue / Cr lesson revenue):
        posts every completed, billed lesson that has no entry yet; returns how many it posted."""
        key = func.concat(entry_key(EntryKind.LESSON_COMPLETED, ""), func.cast(col(Lesson.id), String))
        async with transaction(self._sessions) as session:
            rows = (
                await session.execute(
                    select(
                        col(Lesson.id),
                        col(Subscription.billing_account_id),
                        col(Subscription.amount_minor),
                        col(Subscription.interval),
                        col(Lesson.enrollment_id),
                        col(Lesson.kind),
                        col(Lesson.starts_at),
                    )
                    .join(Subscription, col(Subscription.enrollment_id) == col(Lesson.enrollment_id))
                    .where(
                        col(Lesson.status) == LessonStatus.completed,
                        ~select(col(JournalEntry.id)).where(col(JournalEntry.idempotency_key) == key).exists(),
                    )
                    .limit(request.limit)
                )
            ).all()
            calendars: dict[uuid.UUID, dict[datetime, int]] = {}
            for lesson_id, account_id, amount, interval, enrollment_id, kind, starts_at in rows:
                share = lesson_share(amount, interval)
                if kind == LessonKind.regular and enrollment_id is not None:
                    if enrollment_id not in calendars:
                        calendars[enrollment_id] = await self._earnings(session, enrollment_id, amount, interval)
                    # A regular lesson earns its share of what its period bills by the tuition rule.
                    share = calendars[enrollment_id].get(starts_at, share)
                event = LedgerEvent(kind="lesson_completed", source_id=str(lesson_id), amount_minor=share)
                await post_events(session, account_id, [event])
        return len(rows)

    async def _earnings(
        self, session: AsyncSession, enrollment_id: uuid.UUID, amount: int, interval: str
    ) -> dict[datetime, int]:
        starts = list(await session.scalars(select(col(Lesson.starts_at)).where(*_held_lessons(enrollment_id))))
        return lesson_earnings(self._settings.tuition_rule, amount, interval, starts, self._settings.timezone)

    @activity.defn(name="billing_event_status")
    async def event_status(self, request: EventRef) -> str:
        async with self._sessions() as session:
            status = await session.scalar(
                select(col(StripeEvent.status)).where(col(StripeEvent.stripe_event_id) == request.stripe_event_id)
            )
        return status or ""

    @activity.defn(name="billing_mark_event")
    async def mark_event(self, outcome: EventOutcome) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(StripeEvent)
                .where(col(StripeEvent.stripe_event_id) == outcome.stripe_event_id)
                .values(status=outcome.status, error=outcome.error, processed_at=datetime.now(UTC))
            )

    @activity.defn(name="billing_mark_receipt_sent")
    async def mark_receipt_sent(self, request: SendReceipt) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(Payment)
                .where(col(Payment.id) == request.payment_id, col(Payment.receipt_sent_at).is_(None))
                .values(receipt_sent_at=datetime.now(UTC))
            )

    @activity.defn(name="billing_notify_dunning")
    async def notify_dunning(self, request: NotifyDunning) -> None:
        """Tell the family's dunning workflow (by name): a failure starts it if need be; other news only
        reaches one that is running."""
        message = BILLING_SIGNALS[request.signal].model_validate(request.payload)
        workflow_id = dunning_workflow_id(request.parent_id)
        if request.signal == SIGNAL_INVOICE_FAILED:
            await self._temporal.start_workflow(
                FAMILY_DUNNING_WORKFLOW,
                FamilyDunningInput(parent_id=request.parent_id),
                id=workflow_id,
                task_queue=self._settings.task_queue,
                start_signal=SIGNAL_INVOICE_FAILED,
                start_signal_args=[message],
                static_summary=DUNNING_SUMMARY,
            )
            return
        try:
            await self._temporal.get_workflow_handle(workflow_id).signal(request.signal, message)
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise


def _held_lessons(enrollment_id: uuid.UUID) -> tuple[Any, ...]:
    """The enrollment's regular lessons that happen (or happened): what its tuition is counted from."""
    return (
        col(Lesson.enrollment_id) == enrollment_id,
        col(Lesson.kind) == LessonKind.regular,
        col(Lesson.status).not_in([LessonStatus.cancelled]),
    )


def _charge_row(
    account_id: uuid.UUID,
    invoice_id: uuid.UUID,
    currency: str,
    charge: ChargeSnapshot,
    created_at: datetime,
    **outcome: object,
) -> Insert:
    """The ``payments`` row of one Stripe charge, succeeded or failed, inserted once (its charge id is unique)."""
    return (
        insert(Payment)
        .values(
            id=uuid.uuid4(),
            billing_account_id=account_id,
            invoice_id=invoice_id,
            stripe_charge_id=charge.id,
            stripe_payment_intent_id=charge.payment_intent_id,
            amount_minor=charge.amount_minor,
            currency=currency,
            amount_refunded_minor=0,
            created_at=created_at,
            **outcome,
        )
        .on_conflict_do_nothing(index_elements=["stripe_charge_id"])
    )


async def _write_refund(
    session: AsyncSession, payment: Payment, refund: RefundSnapshot, reason: str, *, unearned: bool = False
) -> int:
    """One refund row and its ledger entry, unless this Stripe refund is recorded already (then 0)."""
    inserted = await session.scalar(
        insert(Refund)
        .values(
            id=uuid.uuid4(),
            payment_id=payment.id,
            stripe_refund_id=refund.id,
            amount_minor=refund.amount_minor,
            reason=reason[:500],
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing(index_elements=["stripe_refund_id"])
        .returning(col(Refund.id))
    )
    if inserted is None:
        return 0
    payment.amount_refunded_minor += refund.amount_minor
    payment.status = "refunded" if payment.amount_refunded_minor >= payment.amount_minor else "partially_refunded"
    events = [LedgerEvent(kind="refund_issued", source_id=refund.id, amount_minor=refund.amount_minor)]
    if unearned:
        events.append(LedgerEvent(kind="tuition_returned", source_id=refund.id, amount_minor=refund.amount_minor))
    await post_events(session, payment.billing_account_id, events)
    return 1
