"""A simulated year of monthly billing through the development renewal endpoint: the workflow continues-as-new
on the way (carrying its state), the trial balance is zero and every Stripe charge is exactly one journal entry."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import stripe
from sqlalchemy import select
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.worker import Replayer

from core.db import SessionFactory
from models import JournalEntry, Payment, Role
from tests.billing.conftest import BillFamily, ledger_problems
from tests.waiting import eventually
from workflows.billing import FamilyBillingWorkflow

MONTHS = 12


async def test_a_year_of_monthly_billing_balances_and_maps_every_charge_to_one_entry(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
    webhooks: str,
) -> None:
    async with billing_worker():
        admin = await auth_headers(Role.admin)
        billed = await bill_family()
        first_run = (await billed.handle.describe()).run_id
        periods = []
        for _ in range(MONTHS):
            renewal = await http.post(f"/api/v1/billing/subscriptions/{billed.subscription.id}/renewals", headers=admin)
            assert renewal.status_code == 201, renewal.text
            assert renewal.json()["status"] == "paid"
            periods.append(renewal.json()["period"])
        balance = await billed.handle.query("balance")
        trial = (await http.get("/api/v1/billing/ledger/trial-balance", headers=admin)).json()
        first = temporal_client.get_workflow_handle(billed.handle.id, run_id=first_run)

        async def continued() -> bool:
            return (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW

        await eventually(continued, what="the first run continued-as-new")
        first_history = await first.fetch_history()

    assert periods == list(range(1, MONTHS + 1))  # the renewal count survived continue-as-new
    assert first_history.events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
    # The workflow is deterministic: its recorded history replays without a non-determinism error.
    await Replayer(workflows=[FamilyBillingWorkflow], data_converter=temporal_client.data_converter).replay_workflow(
        first_history
    )
    assert balance == {"owed_minor": 0, "open_invoices": 0}
    assert trial["total_minor"] == 0
    balances = {a["code"]: a["balance_minor"] for a in trial["accounts"]}
    assert balances["accounts_receivable"] == 0
    assert balances["deferred_revenue"] == -14000 * MONTHS

    page = await stripe_client.v1.charges.list_async(params={"customer": billed.customer_id, "limit": 100})
    charges = [c.id for c in page.data]
    assert len(charges) == MONTHS
    async with sessions() as session:
        keys = list(await session.scalars(select(col(JournalEntry.idempotency_key))))
        payments = list(await session.scalars(select(col(Payment.stripe_charge_id))))
    per_charge = Counter(key.removeprefix("payment_received:") for key in keys if key.startswith("payment_received:"))
    assert per_charge == Counter(charges)  # each charge exactly once, and no entry without a charge
    assert Counter(payments) == Counter(charges)
    assert await ledger_problems(sessions) == {}
