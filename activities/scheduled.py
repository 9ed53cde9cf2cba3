"""The I/O of the schedule-driven workflows: the dunning sweep's families, lesson reminders' lessons, and the
nightly reconciliation of our invoices, payments and ledger against Stripe's."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta
from typing import Any

import stripe
from pydantic import BaseModel
from sqlalchemy import select, update
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.stripe_inbox import hand_over, store_event, summarize
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.temporal import billing_workflow_id, dunning_workflow_id
from domain import ledger
from domain.calendar import local_to_utc
from domain.local_time import format_local
from models import (
    BillingAccount,
    DunningStatus,
    Invoice,
    JournalEntry,
    Lesson,
    LessonKind,
    LessonStatus,
    Payment,
    Student,
)
from workflows.billing_messages import FAMILY_DUNNING_WORKFLOW, SIGNAL_RETRY_INVOICE, RetryInvoice
from workflows.dunning_messages import SIGNAL_REEVALUATE, Reevaluate

log = logging.getLogger("cedar.scheduled")

# Stripe keeps events for 30 days: the reconciliation can replay only what is younger.
STRIPE_EVENT_RETENTION = timedelta(days=30)
REMINDER_BATCH_LIMIT = 2000


class SweepRequest(BaseModel):
    reason: str = "daily_sweep"


class SweepReport(BaseModel):
    nudged: int
    # Families whose billing account says warning/suspended but whose dunning workflow is not running.
    not_running: list[uuid.UUID]


class DueReminders(BaseModel):
    as_of: datetime


class LessonReminder(BaseModel):
    lesson_id: uuid.UUID
    enrollment_id: uuid.UUID
    parent_id: uuid.UUID
    teacher_id: uuid.UUID
    lesson_at_local: str


class LessonRef(BaseModel):
    lesson_id: uuid.UUID


class ReconcileRequest(BaseModel):
    # Only for tests and operators: reconcile one family instead of every family with a Stripe customer.
    parent_id: uuid.UUID | None = None


class Difference(BaseModel):
    """One way our books and Stripe disagree, and what was done about it (``repair`` None: reported only)."""

    kind: str
    parent_id: uuid.UUID | None = None
    stripe_invoice_id: str | None = None
    detail: str
    stripe_status: str | None = None
    repair: str | None = None


class ReconciliationReport(BaseModel):
    families: int
    invoices_checked: int
    differences: list[Difference]

    @property
    def unrepaired(self) -> list[Difference]:
        return [d for d in self.differences if d.repair is None]


class ScheduledActivities:
    def __init__(
        self, settings: Settings, sessions: SessionFactory, temporal: Client, stripe_client: stripe.StripeClient
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._temporal = temporal
        self._stripe = stripe_client

    # --- the daily dunning sweep ---

    @activity.defn(name="scheduled.sweep_dunning")
    async def sweep_dunning(self, request: SweepRequest) -> SweepReport:
        """Nudges every family in dunning to re-evaluate now: those the database says are in arrears, and every
        running dunning workflow of this task queue (Temporal visibility)."""
        async with self._sessions() as session:
            in_arrears = set(
                await session.scalars(
                    select(BillingAccount.parent_id).where(
                        BillingAccount.dunning_state.in_((DunningStatus.warning, DunningStatus.suspended))  # type: ignore[attr-defined]
                    )
                )
            )
        query = (
            f"WorkflowType = '{FAMILY_DUNNING_WORKFLOW}' AND ExecutionStatus = 'Running' "
            f"AND TaskQueue = '{self._settings.task_queue}'"
        )
        running = {
            uuid.UUID(execution.id.removeprefix("family-dunning-"))
            async for execution in self._temporal.list_workflows(query)
        }
        nudged, not_running = 0, []
        for parent_id in sorted(in_arrears | running, key=str):
            try:
                await self._temporal.get_workflow_handle(dunning_workflow_id(parent_id)).signal(
                    SIGNAL_REEVALUATE, Reevaluate(reason=request.reason)
                )
                nudged += 1
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
                not_running.append(parent_id)
            activity.heartbeat(nudged)
        if not_running:
            log.warning("dunning sweep: %d families in arrears have no running dunning workflow", len(not_running))
        return SweepReport(nudged=nudged, not_running=not_running)

    # --- lesson reminders ---

    @activity.defn(name="scheduled.lessons_due_for_reminder")
    async def lessons_due_for_reminder(self, request: DueReminders) -> list[LessonReminder]:
        """Tomorrow's scheduled lessons (in the school's timezone) whose family has not been reminded yet."""
        tz = self._settings.timezone
        tomorrow = request.as_of.astimezone(tz).date() + timedelta(days=1)
        start = local_to_utc(tomorrow, time(0), tz)
        end = local_to_utc(tomorrow + timedelta(days=1), time(0), tz)
        async with self._sessions() as session:
            rows = await session.execute(
                select(Lesson.id, Lesson.enrollment_id, Student.parent_id, Lesson.teacher_id, Lesson.starts_at)
                .join(Student, Student.id == Lesson.student_id)
                .where(
                    Lesson.status == LessonStatus.scheduled,
                    Lesson.kind.in_((LessonKind.regular, LessonKind.makeup)),  # type: ignore[attr-defined]
                    Lesson.reminder_sent_at.is_(None),  # type: ignore[union-attr]
                    Lesson.enrollment_id.is_not(None),  # type: ignore[union-attr]
                    Lesson.starts_at >= start,
                    Lesson.starts_at < end,
                )
                .order_by(Lesson.starts_at)
                .limit(REMINDER_BATCH_LIMIT)
            )
            return [
                LessonReminder(
                    lesson_id=lesson_id,
                    enrollment_id=enrollment_id,
                    parent_id=parent_id,
                    teacher_id=teacher_id,
                    lesson_at_local=format_local(starts_at, tz),
                )
                for lesson_id, enrollment_id, parent_id, teacher_id, starts_at in rows.all()
            ]

    @activity.defn(name="scheduled.mark_reminded")
    async def mark_reminded(self, lesson: LessonRef) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(Lesson)
                .where(Lesson.id == lesson.lesson_id, Lesson.reminder_sent_at.is_(None))  # type: ignore[union-attr]
                .values(reminder_sent_at=datetime.now(UTC))
            )

    # --- nightly reconciliation ---

    @activity.defn(name="scheduled.reconcile")
    async def reconcile(self, request: ReconcileRequest) -> ReconciliationReport:
        """Our invoices, payments and ledger against Stripe's. What the inbox lacks is fed through billing's
        own path (store the event, hand it to the family's billing workflow); a mirror that is wrong although
        the inbox has every event gets billing's re-check; anything else is reported."""
        async with self._sessions() as session:
            query = select(BillingAccount).where(BillingAccount.stripe_customer_id.is_not(None))  # type: ignore[union-attr]
            if request.parent_id is not None:
                query = query.where(BillingAccount.parent_id == request.parent_id)
            accounts = list(await session.scalars(query))
        events = await self._events_by_invoice()
        differences: list[Difference] = []
        checked = 0
        for account in accounts:
            assert account.stripe_customer_id is not None
            theirs = await self._stripe_invoices(account.stripe_customer_id)
            checked += len(theirs)
            for problem in await self._compare(account, theirs):
                if problem.repair == "pending":
                    problem.repair = await self._repair(account, problem, events.get(problem.stripe_invoice_id or ""))
                differences.append(problem)
            activity.heartbeat(checked)
        for difference in differences:
            log.warning(
                "reconciliation: %s %s (%s) repair=%s",
                difference.kind,
                difference.stripe_invoice_id,
                difference.detail,
                difference.repair,
            )
        return ReconciliationReport(families=len(accounts), invoices_checked=checked, differences=differences)

    async def _stripe_invoices(self, customer_id: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        params: dict[str, Any] = {"customer": customer_id, "limit": 100}
        while True:
            page = await self._stripe.v1.invoices.list_async(params=params)
            found.update({str(i.id): i.to_dict() for i in page.data})
            if not page.has_more or not page.data:
                return found
            params["starting_after"] = page.data[-1].id

    async def _events_by_invoice(self) -> dict[str, list[dict[str, Any]]]:
        since = datetime.now(UTC) - STRIPE_EVENT_RETENTION
        params: dict[str, Any] = {"created": {"gte": int(since.timestamp())}, "limit": 100}
        by_invoice: dict[str, list[dict[str, Any]]] = defaultdict(list)
        while True:
            page = await self._stripe.v1.events.list_async(params=params)
            for event in (e.to_dict() for e in page.data):
                _, received = summarize(event)
                if received.invoice_id:
                    by_invoice[received.invoice_id].append(event)
            if not page.has_more or not page.data:
                return by_invoice
            params["starting_after"] = page.data[-1].id

    async def _compare(self, account: BillingAccount, theirs: dict[str, dict[str, Any]]) -> list[Difference]:
        async with self._sessions() as session:
            ours = {
                row.stripe_invoice_id: row
                for row in await session.scalars(select(Invoice).where(Invoice.billing_account_id == account.id))
            }
            charges = set(
                await session.scalars(select(Payment.stripe_charge_id).where(Payment.billing_account_id == account.id))
            )
            keys = set(
                await session.scalars(
                    select(JournalEntry.idempotency_key).where(JournalEntry.billing_account_id == account.id)
                )
            )
        problems: list[Difference] = []

        def add(kind: str, invoice_id: str, detail: str, repairable: bool) -> None:
            problems.append(
                Difference(
                    kind=kind,
                    parent_id=account.parent_id,
                    stripe_invoice_id=invoice_id,
                    detail=detail,
                    stripe_status=theirs[invoice_id]["status"] if invoice_id in theirs else None,
                    repair="pending" if repairable else None,
                )
            )

        for invoice_id, invoice in sorted(theirs.items()):
            status, row = invoice["status"], ours.get(invoice_id)
            if status == "draft":
                continue
            if row is None:
                add("invoice_missing", invoice_id, f"Stripe has a {status} invoice we never recorded", True)
                continue
            if row.amount_due_minor != invoice["amount_due"]:
                add(
                    "amount_differs",
                    invoice_id,
                    f"ours {row.amount_due_minor}, Stripe's {invoice['amount_due']}",
                    False,
                )
            if status == "paid" and row.status != "paid":
                add("payment_missing", invoice_id, f"Stripe says paid, ours is {row.status}", True)
            elif status in ("uncollectible", "void") and row.status in ("open", "past_due"):
                add("status_behind", invoice_id, f"Stripe says {status}, ours is {row.status}", True)
            elif row.status == "paid" and status != "paid":
                add("status_ahead", invoice_id, f"ours is paid, Stripe says {status}", False)
            charge = invoice.get("charge")
            charge_id = charge.get("id") if isinstance(charge, dict) else charge
            if status == "paid" and row.status == "paid" and charge_id and charge_id not in charges:
                add("payment_row_missing", invoice_id, f"no payment recorded for charge {charge_id}", True)
            finalized = ledger.invoice_finalized(invoice_id, 1).idempotency_key
            if row.amount_due_minor > 0 and finalized not in keys:
                add("ledger_entry_missing", invoice_id, f"no journal entry {finalized}", True)
        for invoice_id, row in sorted(ours.items()):
            if invoice_id not in theirs:
                add("unknown_to_stripe", invoice_id, f"our {row.status} invoice is not in Stripe", False)
        return problems

    async def _repair(
        self, account: BillingAccount, problem: Difference, events: list[dict[str, Any]] | None
    ) -> str | None:
        """Billing's normal path: events the inbox lacks are stored and handed over exactly as the webhook does;
        with nothing new to feed, billing is asked to re-read the invoice from Stripe (a check, never a charge)."""
        fed = []
        for event in sorted(events or [], key=lambda e: e["created"]):
            async with transaction(self._sessions) as session:
                stored = await store_event(session, event, source="reconcile")
            if stored.is_new and stored.parent_id is not None:
                await hand_over(self._temporal, self._settings, stored.parent_id, stored.received)
                fed.append(stored.received.stripe_event_id)
        if fed:
            return f"fed {', '.join(fed)}"
        if problem.stripe_invoice_id is None or problem.stripe_status == "open":
            # Billing's re-check of an open invoice reports it to dunning as failed: not ours to trigger.
            return None
        try:
            await self._temporal.get_workflow_handle(billing_workflow_id(account.parent_id)).signal(
                SIGNAL_RETRY_INVOICE,
                RetryInvoice(stripe_invoice_id=problem.stripe_invoice_id, attempt=0, check_only=True),
            )
        except RPCError as error:
            if error.status != RPCStatusCode.NOT_FOUND:
                raise
            return None
        return "billing re-check requested"
