"""An invoice paid → one payment, one receipt, a balanced ledger; the same events delivered three times, or in
reverse order, change nothing more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import stripe
from sqlalchemy import select
from sqlmodel import col
from temporalio.client import Client

from core.db import SessionFactory
from core.settings import Settings
from devstack.localstripe import LocalStripe
from devstack.smtp_sink import SmtpSink
from models import Invoice, JournalEntry, Payment, Role, StripeEvent
from tests.billing.conftest import (
    WEBHOOK_ID,
    BillFamily,
    count,
    customer_events,
    dunning_received,
    ledger_problems,
    post_event,
)
from tests.waiting import eventually


async def test_a_paid_invoice_is_one_payment_one_receipt_and_balanced_books_however_events_arrive(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    localstripe: LocalStripe,
    smtp_sink: SmtpSink,
    webhooks: str,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    secret = settings.stripe_webhook_secrets[0]
    async with billing_worker():
        billed = await bill_family()
        customer = billed.customer_id
        assert customer is not None
        admin = await auth_headers(Role.admin)

        renewal = await http.post(f"/api/v1/billing/subscriptions/{billed.subscription.id}/renewals", headers=admin)
        assert renewal.status_code == 201, renewal.text
        assert renewal.json()["status"] == "paid"
        await smtp_sink.wait_for_messages(billed.family.email, 1)

        async def webhook_acted_on() -> bool:
            return (
                await count(
                    sessions,
                    StripeEvent,
                    StripeEvent.type == "invoice.payment_succeeded",
                    StripeEvent.status == "processed",
                )
                == 1
            )

        await eventually(webhook_acted_on, what="invoice.payment_succeeded delivered and acted on")
        entries_before = await count(sessions, JournalEntry)

        # Every event of the family again, three times each, newest first: nothing changes.
        events = await customer_events(stripe_client, customer)
        assert {"invoice.created", "invoice.payment_succeeded"} <= {e["type"] for e in events}
        for event in reversed(events * 3):
            response = await post_event(http, event, secret)
            assert response.status_code == 200, response.text
            assert response.json()["duplicate"] is True

        # A payment Stripe made on its own (a renewal) while our endpoint was unreachable, whose events then
        # arrive newest first and three times over.
        localstripe.register_webhook("http://127.0.0.1:9/unreachable", secret, WEBHOOK_ID)
        invoice = await stripe_client.v1.invoices.create_async(
            params={"customer": customer, "subscription": billed.stripe_subscription_id}
        )
        await stripe_client.v1.invoices.pay_async(invoice.id)
        missed = [e for e in await customer_events(stripe_client, customer) if e["id"] not in {x["id"] for x in events}]
        assert {"invoice.created", "invoice.payment_succeeded"} <= {e["type"] for e in missed}
        for event in reversed(missed * 3):
            assert (await post_event(http, event, secret)).status_code == 200

        async def second_payment() -> bool:
            return await count(sessions, Payment, Payment.status == "succeeded") == 2

        await eventually(second_payment, what="the out-of-order renewal's payment")
        await eventually(lambda: _all_acted_on(sessions), what="every event acted on")
        received = await dunning_received(temporal_client, billed.family.parent_id)

    async with sessions() as session:
        payments = list(await session.scalars(select(Payment).order_by(col(Payment.created_at))))
        invoices = list(await session.scalars(select(Invoice)))
    assert [p.amount_minor for p in payments] == [14000, 14000]
    assert all(p.receipt_sent_at is not None for p in payments)
    assert sorted(i.status for i in invoices) == ["paid", "paid"]
    # Invoice finalized + payment received per invoice, nothing twice.
    assert entries_before == 2
    assert await count(sessions, JournalEntry) == 4
    assert await ledger_problems(sessions) == {}
    assert len(await smtp_sink.wait_for_messages(billed.family.email, 2)) == 2
    # No payment failed, so dunning never started (news of a payment only reaches a running dunning).
    assert received == []


async def _all_acted_on(sessions: SessionFactory) -> bool:
    return await count(sessions, StripeEvent, col(StripeEvent.status).in_(["received", "failed"])) == 0
