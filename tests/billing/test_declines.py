"""Declined cards put the invoice past due and start dunning; dunning's retry and write-off, and a new card, are
billing's to carry out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import stripe
from sqlalchemy import select
from sqlmodel import col
from temporalio.client import Client

from core.contracts.billing import (
    SIGNAL_RETRY_INVOICE,
    SIGNAL_STRIPE_EVENT,
    SIGNAL_WRITE_OFF,
    RetryInvoice,
    StripeEventReceived,
    WriteOff,
)
from core.db import SessionFactory
from models import Invoice, JournalEntry, Role, Subscription
from tests.billing.conftest import CARD_OK, Billed, BillFamily, card, count, dunning_received, ledger_problems
from tests.waiting import eventually

# card → (failure code, decline code) dunning hears. The first two are declined when attached (so there is no
# card to charge); the last attaches and then fails every charge.
DECLINES = {
    "4000000000000002": ("no_payment_method", "generic_decline"),
    "4000000000009995": ("no_payment_method", "insufficient_funds"),
    "4000000000000341": ("card_declined", "generic_decline"),
}


async def _invoice(sessions: SessionFactory, billed: Billed) -> Invoice:
    async with sessions() as session:
        invoice = await session.scalar(select(Invoice).where(col(Invoice.billing_account_id) == billed.account.id))
    assert invoice is not None
    return invoice


async def _subscription_status(sessions: SessionFactory, billed: Billed) -> str:
    async with sessions() as session:
        return str(
            await session.scalar(select(col(Subscription.status)).where(col(Subscription.id) == billed.subscription.id))
        )


async def _signals(client: Client, billed: Billed, count: int) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        received = await dunning_received(client, billed.family.parent_id)
        return received if len(received) >= count else None

    return await eventually(enough, what=f"{count} signals to dunning")


async def test_declined_cards_go_past_due_and_dunning_drives_retry_write_off_and_new_card(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    async with billing_worker():
        admin = await auth_headers(Role.admin)
        families: dict[str, Billed] = {}
        for number, (failure_code, decline_code) in DECLINES.items():
            billed = await bill_family(number)
            families[number] = billed
            renewal = await http.post(f"/api/v1/billing/subscriptions/{billed.subscription.id}/renewals", headers=admin)
            assert renewal.status_code == 201, renewal.text
            assert renewal.json()["status"] == "past_due"
            invoice = await _invoice(sessions, billed)
            assert (invoice.status, invoice.attempt_count) == ("past_due", 1)
            assert invoice.first_failed_at is not None
            assert await _subscription_status(sessions, billed) == "past_due"
            [failed] = await _signals(temporal_client, billed, 1)
            assert failed["signal"] == "invoice_failed"
            assert (failed["failure_code"], failed["decline_code"]) == (failure_code, decline_code)
            assert (failed["stripe_invoice_id"], failed["attempt"]) == (invoice.stripe_invoice_id, 1)
            assert failed["amount_due_minor"] == 14000
            assert failed["outcome_unknown"] is False

        # Dunning retries the first family's invoice: billing re-checks Stripe, charges again, reports again.
        first = families["4000000000000002"]
        invoice = await _invoice(sessions, first)
        await first.handle.signal(
            SIGNAL_RETRY_INVOICE, RetryInvoice(stripe_invoice_id=invoice.stripe_invoice_id, attempt=2)
        )
        retried = (await _signals(temporal_client, first, 2))[1]
        assert (retried["signal"], retried["attempt"]) == ("invoice_failed", 2)

        # Dunning gives up on the second family: invoice uncollectible, bad debt posted, lessons' billing ended.
        second = families["4000000000009995"]
        invoice = written = await _invoice(sessions, second)
        await second.handle.signal(
            SIGNAL_WRITE_OFF,
            WriteOff(stripe_invoice_ids=[invoice.stripe_invoice_id], reason="cancelled for non-payment"),
        )

        async def written_off() -> bool:
            return (await _invoice(sessions, second)).status == "uncollectible" and (
                await _subscription_status(sessions, second)
            ) == "canceled"

        await eventually(written_off, what="write-off")

        # The third family's parent gives a new card: the past-due invoice is paid at once.
        third = families["4000000000000341"]
        parent = await auth_headers(Role.parent, user_id=third.family.user_id)
        declined = await http.put(
            f"/api/v1/billing/families/{third.family.parent_id}/card",
            json={"payment_method_id": await card(stripe_client, "4000000000009995")},
            headers=parent,
        )
        assert declined.status_code == 402, declined.text
        assert declined.json()["fields"] == {"payment_method_id": "insufficient_funds"}
        new_card = await card(stripe_client, CARD_OK)
        changed = await http.put(
            f"/api/v1/billing/families/{third.family.parent_id}/card",
            json={"payment_method_id": new_card},
            headers=parent,
        )
        assert changed.status_code == 200, changed.text
        signals = await _signals(temporal_client, third, 3)
        assert [s["signal"] for s in signals] == ["invoice_failed", "card_updated", "invoice_paid"]
        assert signals[1]["stripe_payment_method_id"] == new_card
        view = (await http.get(f"/api/v1/billing/families/{third.family.parent_id}", headers=parent)).json()

        # The school voids a fourth family's past-due invoice in Stripe's dashboard: it is owed no more.
        fourth = await bill_family("4000000000000341")
        await http.post(f"/api/v1/billing/subscriptions/{fourth.subscription.id}/renewals", headers=admin)
        invoice = await _invoice(sessions, fourth)
        await stripe_client.v1.invoices.void_invoice_async(invoice.stripe_invoice_id)
        voided = StripeEventReceived(
            stripe_event_id=f"evt_void_{invoice.stripe_invoice_id}",
            type="invoice.voided",
            object_id=invoice.stripe_invoice_id,
            invoice_id=invoice.stripe_invoice_id,
        )
        await fourth.handle.signal(SIGNAL_STRIPE_EVENT, voided)
        reversal_key = f"reversal:invoice_finalized:{invoice.stripe_invoice_id}"
        await eventually(
            lambda: count(sessions, JournalEntry, JournalEntry.idempotency_key == reversal_key),
            what="the invoice's reversal posted",
        )
        assert (await _invoice(sessions, fourth)).status == "void"
        fourth_view = await http.get(f"/api/v1/billing/families/{fourth.family.parent_id}", headers=admin)
        assert fourth_view.json()["balance_minor"] == 0

    assert (await _invoice(sessions, third)).status == "paid"
    assert await _subscription_status(sessions, third) == "active"
    assert view["balance_minor"] == 0
    assert view["has_card"] is True
    assert [p["status"] for p in view["payments"]] == ["succeeded", "failed"]
    assert view["payments"][1]["decline_code"] == "generic_decline"
    async with sessions() as session:
        bad_debt = await session.scalar(
            select(JournalEntry).where(
                col(JournalEntry.idempotency_key) == f"bad_debt_written_off:{written.stripe_invoice_id}"
            )
        )
    assert bad_debt is not None
    assert await ledger_problems(sessions) == {}
