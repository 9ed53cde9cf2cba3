"""Missed webhooks: a payment Stripe made while our endpoint was unreachable is recovered by the scheduled
catch-up, through the webhook's own path, and the checkpoint moves on."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select
from temporalio.client import Client

from core.db import SessionFactory
from core.settings import Settings
from devstack.localstripe import LocalStripe
from models import Invoice, Payment, StripeEvent, SystemSetting
from tests.billing.conftest import WEBHOOK_ID, billed_family, count, eventually, ledger_problems
from workflows.stripe_catchup import STRIPE_CATCHUP_SCHEDULE_ID, ensure_catchup_schedule


async def test_a_missed_webhook_is_recovered_by_the_scheduled_catch_up(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    localstripe: LocalStripe,
) -> None:
    localstripe.register_webhook("http://127.0.0.1:9/unreachable", settings.stripe_webhook_secrets[0], WEBHOOK_ID)
    async with sessions() as session:
        session.add(
            SystemSetting(
                key="stripe_events_checkpoint", value=int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
            )
        )
        await session.commit()
    async with billing_worker():
        billed = await billed_family(sessions, settings, temporal_client, stripe_client)
        # Stripe renews on its own; the delivery of its events fails and is never retried (localstripe).
        invoice = await stripe_client.v1.invoices.create_async(
            params={
                "customer": billed.account.stripe_customer_id,
                "subscription": billed.subscription.stripe_subscription_id,
            }
        )
        await stripe_client.v1.invoices.pay_async(invoice.id)
        assert await count(sessions, Payment) == 0

        await ensure_catchup_schedule(temporal_client, settings)
        await ensure_catchup_schedule(temporal_client, settings)  # a second deploy updates it in place
        schedule = temporal_client.get_schedule_handle(STRIPE_CATCHUP_SCHEDULE_ID)
        try:
            await schedule.trigger()

            async def recovered() -> bool:
                return await count(sessions, Payment, Payment.status == "succeeded") == 1

            await eventually(recovered, timeout=30, what="the missed payment recorded")
            await eventually(lambda: _settled(sessions), what="every recovered event acted on")
        finally:
            await schedule.delete()

    async with sessions() as session:
        row = await session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == invoice.id))
        sources = set(await session.scalars(select(StripeEvent.source)))
        checkpoint = await session.get(SystemSetting, "stripe_events_checkpoint")
    assert row is not None and row.status == "paid"
    assert sources == {"catchup"}
    assert checkpoint is not None and checkpoint.value >= invoice.created
    assert await ledger_problems(sessions) == {}


async def _settled(sessions: SessionFactory) -> bool:
    pending = await count(sessions, StripeEvent, StripeEvent.status.in_(["received", "failed"]))
    return pending == 0 and await count(sessions, StripeEvent, StripeEvent.type == "invoice.payment_succeeded") == 1
