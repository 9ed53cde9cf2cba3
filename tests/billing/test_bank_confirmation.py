"""A payment the parent's bank wants confirmed (3-D Secure): dunning hears it as such (no blind retries), and
once the parent confirms, the invoice is paid once and dunning hears that too."""

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
from models import Invoice, Payment, Role
from tests.billing.conftest import BillFamily, count, dunning_received, ledger_problems, post_event, stripe_event
from tests.conftest import WEBHOOK_SECRET
from tests.waiting import eventually

# localstripe asks for authentication on every payment with this card, as a bank using 3-D Secure would.
CARD_THREE_D_SECURE = "4000002500003155"


async def test_a_payment_the_bank_wants_confirmed_waits_for_the_parent_then_is_paid_once(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
    webhooks: str,
) -> None:
    async with billing_worker():
        admin = await auth_headers(Role.admin)
        billed = await bill_family(CARD_THREE_D_SECURE)
        renewal = await http.post(f"/api/v1/billing/subscriptions/{billed.subscription.id}/renewals", headers=admin)
        assert renewal.status_code == 201, renewal.text
        assert renewal.json()["status"] == "past_due"

        async def told(kind: str) -> dict[str, Any] | None:
            received = await dunning_received(temporal_client, billed.family.parent_id)
            return next((signal for signal in received if signal["signal"] == kind), None)

        failed = await eventually(lambda: told("invoice_failed"), what="dunning told of the attempt")
        assert (failed["failure_code"], failed["decline_code"]) == ("authentication_required", None)
        assert failed["attempt"] == 1
        assert failed["outcome_unknown"] is False

        # The parent confirms with their bank: localstripe's stand-in for the 3-D Secure page.
        async with sessions() as session:
            invoice = await session.scalar(select(Invoice).where(col(Invoice.billing_account_id) == billed.account.id))
        assert invoice is not None
        stripe_invoice = (await stripe_client.v1.invoices.retrieve_async(invoice.stripe_invoice_id)).to_dict()
        intent = (await stripe_client.v1.payment_intents.retrieve_async(stripe_invoice["payment_intent"])).to_dict()
        assert intent["status"] == "requires_action"
        confirmed = await httpx.AsyncClient().post(
            f"{settings.stripe_api_base}/v1/payment_intents/{intent['id']}/_authenticate",
            data={"client_secret": intent["client_secret"], "success": "true"},
            auth=(settings.stripe_api_key, ""),
        )
        assert confirmed.status_code == 200, confirmed.text

        await eventually(lambda: told("invoice_paid"), what="dunning told of the payment")

        async def paid() -> bool:
            async with sessions() as session:
                status = await session.scalar(select(col(Invoice.status)).where(col(Invoice.id) == invoice.id))
            return status == "paid"

        await eventually(paid, what="the invoice paid")
    assert (
        await count(sessions, Payment, Payment.billing_account_id == billed.account.id, Payment.status == "succeeded")
        == 1
    )
    assert await ledger_problems(sessions) == {}


async def test_stripes_own_attempt_waiting_for_the_bank_reaches_dunning_as_such(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
) -> None:
    async with billing_worker():
        billed = await bill_family(CARD_THREE_D_SECURE)
        # Stripe renews and tries the card by itself; the bank wants the parent to confirm.
        invoice = await stripe_client.v1.invoices.create_async(
            params={
                "customer": billed.customer_id,
                "subscription": billed.stripe_subscription_id,
            }
        )
        attempted = (await stripe_client.v1.invoices.pay_async(invoice.id)).to_dict()
        # What Stripe then sends (localstripe sends nothing for it), signed as Stripe signs it.
        event = stripe_event("invoice.payment_action_required", attempted)
        assert (await post_event(http, event, WEBHOOK_SECRET)).status_code == 200

        async def told() -> dict[str, Any] | None:
            received = await dunning_received(temporal_client, billed.family.parent_id)
            return next((signal for signal in received if signal["signal"] == "invoice_failed"), None)

        failed = await eventually(told, what="dunning told of the attempt")
    assert (failed["failure_code"], failed["stripe_invoice_id"], failed["attempt"]) == (
        "authentication_required",
        invoice.id,
        1,
    )
    async with sessions() as session:
        row = await session.scalar(select(Invoice).where(col(Invoice.stripe_invoice_id) == invoice.id))
    assert row is not None
    assert (row.status, row.attempt_count) == ("past_due", 1)
