"""The nightly reconciliation: our invoices, payments and ledger against Stripe's. What the inbox lacks is fed
through billing's own path; what cannot be repaired is reported (the workflow's result, and the log)."""

from __future__ import annotations

import logging
from collections import defaultdict
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
from core.contracts.scheduled import Difference, ReconcileRequest, ReconciliationReport
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.stripe_inbox import store_event, summarize
from core.temporal import billing_workflow_id
from domain import ledger
from models import BillingAccount, Invoice, JournalEntry, Payment

log = logging.getLogger("cedar.reconciliation")

# Stripe keeps events for 30 days: the reconciliation can replay only what is younger.
STRIPE_EVENT_RETENTION = timedelta(days=30)


class ReconciliationActivities:
    def __init__(
        self, settings: Settings, sessions: SessionFactory, temporal: Client, stripe_client: stripe.StripeClient
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._temporal = temporal
        self._stripe = stripe_client

    @activity.defn(name="scheduled.reconcile")
    async def reconcile(self, request: ReconcileRequest) -> ReconciliationReport:
        """Our invoices, payments and ledger against Stripe's. What the inbox lacks is fed through billing's
        own path (store the event, hand it to the family's billing workflow); a mirror that is wrong although
        the inbox has every event gets billing's re-check; anything else is reported."""
        async with self._sessions() as session:
            query = select(BillingAccount).where(col(BillingAccount.stripe_customer_id).is_not(None))
            if request.parent_id is not None:
                query = query.where(col(BillingAccount.parent_id) == request.parent_id)
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
        params: InvoiceListParams = {"customer": customer_id, "limit": 100}
        while True:
            page = await self._stripe.v1.invoices.list_async(params=params)
            found.update({str(i.id): i.to_dict() for i in page.data})
            if not page.has_more or not page.data:
                return found
            params["starting_after"] = page.data[-1].id

    async def _events_by_invoice(self) -> dict[str, list[dict[str, Any]]]:
        since = datetime.now(UTC) - STRIPE_EVENT_RETENTION
        params: EventListParams = {"created": {"gte": int(since.timestamp())}, "limit": 100}
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
