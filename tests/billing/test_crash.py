"""A worker killed after Stripe charged but before the database heard of it: the retried activity re-reads the
invoice from Stripe instead of charging again, so there is one charge and one payment."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from typing import Any

import stripe

from core.contracts.billing import UPDATE_RENEW, RenewRequest, RenewResult
from core.db import SessionFactory
from core.settings import Settings
from core.stripe import create_stripe_client
from models import Payment
from tests.billing.conftest import BillFamily, count, ledger_problems
from workers.registry import WorkerDeps


def stripe_that_dies_after_charging(settings: Settings, charged: asyncio.Event) -> stripe.StripeClient:
    """The real client, except that paying an invoice never returns once the charge is made: the worker is
    killed in that instant."""
    client = create_stripe_client(settings)
    pay = client.v1.invoices.pay_async

    async def pay_then_hang(*args: Any, **kwargs: Any) -> Any:
        await pay(*args, **kwargs)
        charged.set()
        await asyncio.Event().wait()

    client.v1.invoices.pay_async = pay_then_hang  # type: ignore[method-assign]
    return client


async def test_a_worker_killed_between_the_charge_and_the_database_write_charges_once(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    worker_deps: WorkerDeps,
    sessions: SessionFactory,
    settings: Settings,
    stripe_client: stripe.StripeClient,
) -> None:
    charged = asyncio.Event()
    dying = dataclasses.replace(worker_deps, stripe=stripe_that_dies_after_charging(settings, charged))
    async with billing_worker(dying):
        billed = await bill_family()
        renewal = asyncio.create_task(
            billed.handle.execute_update(
                UPDATE_RENEW,
                RenewRequest(stripe_subscription_id=str(billed.subscription.stripe_subscription_id)),
                result_type=RenewResult,
            )
        )
        await asyncio.wait_for(charged.wait(), timeout=30)
    assert await count(sessions, Payment) == 0  # killed before the database write

    async with billing_worker():  # the worker comes back
        result = await asyncio.wait_for(renewal, timeout=60)
    assert result.status == "paid"

    charges = await stripe_client.v1.charges.list_async(params={"customer": billed.customer_id})
    assert len(charges.data) == 1
    assert await count(sessions, Payment) == 1
    assert await count(sessions, Payment, Payment.stripe_charge_id == charges.data[0].id) == 1
    assert await ledger_problems(sessions) == {}
