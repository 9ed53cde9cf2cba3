"""A refund made outside Cedar (the Stripe dashboard) reaches the family's payment and the books, once; a refund
Cedar made itself is not counted again when Stripe's event about it arrives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import stripe
from sqlalchemy import func, select
from sqlmodel import col

from core.db import SessionFactory
from models import JournalEntry, Payment, Refund, Role, StripeEvent
from tests.billing.conftest import BillFamily, ledger_problems, post_event, renew_and_pay, stripe_event
from tests.conftest import WEBHOOK_SECRET
from tests.waiting import eventually


async def _charge_refunded(stripe_client: stripe.StripeClient, charge_id: str) -> dict[str, Any]:
    """The event Stripe sends when a charge is refunded, carrying the charge as Stripe holds it now (localstripe
    sends none for refunds, so the test signs it as Stripe would)."""
    return stripe_event("charge.refunded", (await stripe_client.v1.charges.retrieve_async(charge_id)).to_dict())


async def test_a_dashboard_refund_is_mirrored_once_and_cedars_own_are_not_doubled(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    async with billing_worker():
        admin = await auth_headers(Role.admin)
        billed = await bill_family()
        payment = await renew_and_pay(http, sessions, billed, admin)
        assert payment.stripe_charge_id is not None

        # The owner refunds 30.00 in Stripe's dashboard; Stripe then tells us, twice (a redelivery).
        outside = await stripe_client.v1.refunds.create_async(
            params={"charge": payment.stripe_charge_id, "amount": 3000}
        )
        event = await _charge_refunded(stripe_client, payment.stripe_charge_id)
        for _ in range(2):
            assert (await post_event(http, event, WEBHOOK_SECRET)).status_code == 200

        async def processed(event_id: str) -> bool:
            async with sessions() as session:
                status = await session.scalar(
                    select(col(StripeEvent.status)).where(col(StripeEvent.stripe_event_id) == event_id)
                )
            return status == "processed"

        await eventually(lambda: processed(event["id"]), what="the refund event acted on")
        async with sessions() as session:
            mirrored = await session.scalar(select(Refund).where(col(Refund.stripe_refund_id) == outside.id))
        assert mirrored is not None
        assert mirrored.amount_minor == 3000

        # Cedar refunds 20.00 itself; Stripe's event about that charge lists both refunds: nothing doubles.
        ours = await http.post(
            f"/api/v1/billing/payments/{payment.id}/refunds", json={"amount_minor": 2000}, headers=admin
        )
        assert ours.status_code == 201, ours.text
        later = await _charge_refunded(stripe_client, payment.stripe_charge_id)
        assert (await post_event(http, later, WEBHOOK_SECRET)).status_code == 200
        await eventually(lambda: processed(later["id"]), what="the second refund event acted on")

    async with sessions() as session:
        refreshed = await session.get(Payment, payment.id, populate_existing=True)
        refunds = (await session.scalars(select(Refund).where(col(Refund.payment_id) == payment.id))).all()
        refund_entries = await session.scalar(
            select(func.count()).select_from(JournalEntry).where(col(JournalEntry.kind) == "refund_issued")
        )
    assert refreshed is not None
    assert sorted(r.amount_minor for r in refunds) == [2000, 3000]
    assert (refreshed.amount_refunded_minor, refreshed.status) == (5000, "partially_refunded")
    assert refund_entries == 2
    assert await ledger_problems(sessions) == {}
