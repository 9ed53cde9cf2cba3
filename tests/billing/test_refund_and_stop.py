"""An admin refunds part and then the rest of a payment (the ledger follows, Stripe keeps its fee); a parent
stops a student's lessons (an enrollment whose workflow is gone: the stop closes it too, and without lessons booked
billing stops as the school's stop mode says); the statement and the trial balance tell the story."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import stripe
from temporalio.client import Client

from core.contracts.billing import SIGNAL_STUDENT_STOPPED, StudentStopped
from core.db import SessionFactory
from core.settings import Settings
from domain.ledger import estimate_fee
from models import Enrollment, Payment, Refund, Role, Subscription
from tests.billing.conftest import BillFamily, count, ledger_problems, renew_and_pay
from tests.waiting import eventually
from workers.main import build_deps


async def test_refunds_post_to_the_ledger_and_stopping_ends_billing_at_period_end(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    async with billing_worker():
        admin = await auth_headers(Role.admin)
        billed = await bill_family()
        parent = await auth_headers(Role.parent, user_id=billed.family.user_id)
        payment = await renew_and_pay(http, sessions, billed, admin)

        url = f"/api/v1/billing/payments/{payment.id}/refunds"
        key = {"Idempotency-Key": str(uuid.uuid4())}
        forbidden = await http.post(url, json={"amount_minor": 100}, headers=parent)
        assert forbidden.status_code == 403
        partial = await http.post(
            url, json={"amount_minor": 5000, "reason": "two lessons missed"}, headers={**admin, **key}
        )
        repeat = await http.post(
            url, json={"amount_minor": 5000, "reason": "two lessons missed"}, headers={**admin, **key}
        )
        assert partial.status_code == repeat.status_code == 201, partial.text
        assert partial.json()["stripe_refund_id"] == repeat.json()["stripe_refund_id"]
        too_much = await http.post(url, json={"amount_minor": 9001}, headers=admin)
        assert too_much.status_code == 409, too_much.text
        rest = await http.post(url, json={}, headers=admin)
        assert (rest.status_code, rest.json()["amount_minor"]) == (201, 9000)

        stop = await http.post(
            f"/api/v1/billing/families/{billed.family.parent_id}/subscriptions/{billed.subscription.id}/stop",
            json={"reason": "moving away"},
            headers=parent,
        )
        assert stop.status_code == 202, stop.text
        assert (stop.json()["via"], stop.json()["stopped"]) == (
            "billing",
            ["lessons", "teacher_place", "billing", "enrollment"],
        )

        async def stopping() -> bool:
            async with sessions() as session:
                sub = await session.get(Subscription, billed.subscription.id, populate_existing=True)
            return sub is not None and sub.cancel_at_period_end

        await eventually(stopping, what="cancel at period end")
        statement = (
            await http.get(f"/api/v1/billing/families/{billed.family.parent_id}/statement", headers=admin)
        ).json()
        trial = (await http.get("/api/v1/billing/ledger/trial-balance", headers=admin)).json()
        other_family = await http.get(f"/api/v1/billing/families/{uuid.uuid4()}", headers=parent)

    assert other_family.status_code == 404
    async with sessions() as session:
        enrollment = await session.get(Enrollment, billed.subscription.enrollment_id)
    assert enrollment is not None
    assert enrollment.state == "cancelled"
    assert payment.stripe_charge_id is not None  # renew_and_pay checked it
    refunds = await stripe_client.v1.refunds.list_async(params={"charge": payment.stripe_charge_id})
    assert sorted(r.amount for r in refunds.data) == [5000, 9000]
    assert await count(sessions, Refund) == 2
    async with sessions() as session:
        refunded = await session.get(Payment, payment.id, populate_existing=True)
    assert refunded is not None
    assert (refunded.status, refunded.amount_refunded_minor) == ("refunded", 14000)

    fee = estimate_fee(14000, settings.stripe_fee_percent_bps, settings.stripe_fee_fixed_minor)
    balances = {a["code"]: a["balance_minor"] for a in trial["accounts"]}
    assert trial["total_minor"] == 0
    assert balances["refunds"] == 14000
    assert balances["processing_fees"] == fee  # Stripe keeps its fee on a refund
    assert balances["stripe_clearing"] == 14000 - fee - 14000
    assert balances["accounts_receivable"] == 0
    assert balances["deferred_revenue"] == -14000
    assert (statement["charges_minor"], statement["payments_minor"], statement["refunds_minor"]) == (
        14000,
        14000,
        14000,
    )
    assert statement["balance_minor"] == 0
    assert [line["kind"] for line in statement["lines"]] == [
        "invoice_finalized",
        "payment_received",
        "refund_issued",
        "refund_issued",
    ]
    assert await ledger_problems(sessions) == {}


async def test_stopping_at_once_cancels_the_subscription_when_the_school_says_so(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
) -> None:
    settings = make_settings(stop_lessons_mode="immediate")
    async with billing_worker(build_deps(settings, sessions, temporal_client)):
        billed = await bill_family()
        stopped = StudentStopped(
            enrollment_id=billed.subscription.enrollment_id,
            parent_id=billed.family.parent_id,
            student_id=billed.subscription.student_id,
            reason="moving away",
        )
        await billed.handle.signal(SIGNAL_STUDENT_STOPPED, stopped)

        async def canceled() -> bool:
            async with sessions() as session:
                sub = await session.get(Subscription, billed.subscription.id, populate_existing=True)
            return sub is not None and sub.status == "canceled" and sub.canceled_at is not None

        await eventually(canceled, what="subscription canceled")
    in_stripe = await stripe_client.v1.subscriptions.retrieve_async(str(billed.subscription.stripe_subscription_id))
    assert in_stripe.status == "canceled"
