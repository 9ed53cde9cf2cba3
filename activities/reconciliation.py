"""The nightly reconciliation: our invoices, payments and ledger against Stripe's. What the inbox lacks is fed
through billing's own path; what cannot be repaired is reported (the workflow's result, and the log). It works
in pages of billing accounts, each an activity that heartbeats its cursor and resumes from it."""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select
from sqlmodel import col
from stripe.params import EventListParams, InvoiceListParams
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.stripe_inbox import hand_over
from core.contracts.billing import SIGNAL_RETRY_INVOICE, RetryInvoice
from core.contracts.scheduled import (
    Difference,
    ReconcilePage,
    ReconcilePageResult,
    ReconcileRequest,
    ReconciliationReport,
    bounded_sample,
)
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.stripe_inbox import store_event, summarize
from core.temporal import billing_workflow_id
from domain import ledger
from models import BillingAccount, Invoice, JournalEntry, Payment

log = logging.getLogger("cedar.reconciliation")

# Stripe keeps events for 30 days: the reconciliation can replay only what is younger.
STRIPE_EVENT_RETENTION = timedelta(days=30)


class EventIndex:
    """Stripe's events of the last 30 days by invoice, as ids only, listed on the first repair that needs them;
    an invoice's events are fetched when it is repaired, so memory holds ids, not events."""

    def __init__(self, client: stripe.StripeClient, beat: Callable[[], None]) -> None:
        self._stripe = client
        self._beat = beat  # the activity's heartbeat, with its own progress
        self._ids: dict[str, list[str]] | None = None

    async def of_invoice(self, invoice_id: str) -> list[dict[str, Any]]:
        if self._ids is None:
            self._ids = await self._list()
        events = [(await self._stripe.v1.events.retrieve_async(i)).to_dict() for i in self._ids.get(invoice_id, [])]
        return sorted(events, key=lambda e: e["created"])

    async def _list(self) -> dict[str, list[str]]:
        since = datetime.now(UTC) - STRIPE_EVENT_RETENTION
        params: EventListParams = {"created": {"gte": int(since.timestamp())}, "limit": 100}
        by_invoice: dict[str, list[str]] = defaultdict(list)
        while True:
            page = await self._stripe.v1.events.list_async(params=params)
            for event in page.data:
                _, received = summarize(event.to_dict())
                if received.invoice_id:
                    by_invoice[received.invoice_id].append(str(event.id))
            self._beat()
            if not page.has_more or not page.data:
                return by_invoice
            params["starting_after"] = page.data[-1].id


class ReconciliationActivities:
    def __init__(
        self, settings: Settings, sessions: SessionFactory, temporal: Client, stripe_client: stripe.StripeClient
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._temporal = temporal
        self._stripe = stripe_client

    @activity.defn(name="scheduled.reconcile_page")
    async def reconcile_page(self, page: ReconcilePage) -> ReconcilePageResult:
        """One page of billing accounts after the cursor, reconciled (``_reconcile_account``); heartbeats after
        each account with the page's progress, so a retry after a crash or a timeout resumes past those done.
        Each difference is logged; the result counts them all and lists a bounded sample."""
        details = activity.info().heartbeat_details
        progress = ReconcilePageResult.model_validate(details[0]) if details else ReconcilePageResult()
        size = self._settings.reconciliation_page_size
        if progress.last_account_id is not None:
            size -= progress.families  # the page keeps its size across a resume
        accounts = await self._accounts(page.parent_id, progress.last_account_id or page.after_account_id, size + 1)
        events = EventIndex(self._stripe, lambda: activity.heartbeat(progress.model_copy(deep=True)))
        for account in accounts[:size]:
            checked, problems = await self._reconcile_account(account, events)
            progress.families += 1
            progress.invoices_checked += checked
            progress.differences_total += len(problems)
            progress.unrepaired_total += sum(problem.repair is None for problem in problems)
            for problem in problems:
                progress.by_kind[problem.kind] = progress.by_kind.get(problem.kind, 0) + 1
            progress.differences = bounded_sample([*progress.differences, *problems])
            progress.last_account_id = account.id
            # A copy: the SDK sends heartbeat details later, while this goes on changing its progress.
            activity.heartbeat(progress.model_copy(deep=True))
        progress.more = len(accounts) > size
        if progress.last_account_id is None:
            progress.last_account_id = page.after_account_id
        return progress

    @activity.defn(name="scheduled.reconcile")
    async def reconcile(self, request: ReconcileRequest) -> ReconciliationReport:
        """Every family at once, for runs started before reconciliation paged."""
        accounts = await self._accounts(request.parent_id, None, None)
        differences: list[Difference] = []
        checked = 0
        events = EventIndex(self._stripe, lambda: activity.heartbeat(checked))
        for account in accounts:
            found, problems = await self._reconcile_account(account, events)
            checked += found
            differences += problems
            activity.heartbeat(checked)
        return ReconciliationReport(families=len(accounts), invoices_checked=checked, differences=differences)

    async def _accounts(
        self, parent_id: uuid.UUID | None, after: uuid.UUID | None, limit: int | None
    ) -> list[BillingAccount]:
        """Billing accounts with a Stripe customer (one family's, or all), in id order after ``after``."""
        query = (
            select(BillingAccount)
            .where(col(BillingAccount.stripe_customer_id).is_not(None))
            .order_by(col(BillingAccount.id))
            .limit(limit)
        )
        if parent_id is not None:
            query = query.where(col(BillingAccount.parent_id) == parent_id)
        if after is not None:
            query = query.where(col(BillingAccount.id) > after)
        async with self._sessions() as session:
            return list(await session.scalars(query))

    async def _reconcile_account(self, account: BillingAccount, events: EventIndex) -> tuple[int, list[Difference]]:
        """Our invoices, payments and ledger against Stripe's for one family. What the inbox lacks is fed
        through billing's own path (store the event, hand it to the family's billing workflow); a mirror that is
        wrong although the inbox has every event gets billing's re-check; anything else is reported. Returns the
        invoices checked and the differences."""
        assert account.stripe_customer_id is not None
        theirs = await self._stripe_invoices(account.stripe_customer_id)
        problems = await self._compare(account, theirs)
        for problem in problems:
            if problem.repair == "pending":
                fed = await events.of_invoice(problem.stripe_invoice_id or "")
                problem.repair = await self._repair(account, problem, fed)
            log.warning(
                "reconciliation: %s %s (%s) repair=%s",
                problem.kind,
                problem.stripe_invoice_id,
                problem.detail,
                problem.repair,
            )
        return len(theirs), problems

    async def _stripe_invoices(self, customer_id: str) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        params: InvoiceListParams = {"customer": customer_id, "limit": 100}
        while True:
            page = await self._stripe.v1.invoices.list_async(params=params)
            found.update({str(i.id): i.to_dict() for i in page.data})
            if not page.has_more or not page.data:
                return found
            params["starting_after"] = page.data[-1].id

    async def _compare(self, account: BillingAccount, theirs: dict[str, dict[str, Any]]) -> list[Difference]:
        async with self._sessions() as session:
            ours = {
                row.stripe_invoice_id: row
                for row in await session.scalars(select(Invoice).where(col(Invoice.billing_account_id) == account.id))
            }
            charges = set(
                await session.scalars(
                    select(col(Payment.stripe_charge_id)).where(col(Payment.billing_account_id) == account.id)
                )
            )
            keys = set(
                await session.scalars(
                    select(col(JournalEntry.idempotency_key)).where(col(JournalEntry.billing_account_id) == account.id)
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
