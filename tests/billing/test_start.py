"""Enrollment `continue` → the family's Stripe customer, a trial subscription ending at the first lesson, and
the sibling discount for the second child: every object once, however often the start is signalled."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select
from sqlmodel import col
from temporalio.client import Client

from core.db import SessionFactory
from core.settings import Settings
from models import BillingAccount, Subscription
from tests.billing.conftest import card, make_enrollment, make_family, start_student, started_message
from tests.waiting import eventually
from workers.main import build_deps


async def _subscriptions(sessions: SessionFactory, account_id: Any) -> list[Subscription]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Subscription)
            .where(col(Subscription.billing_account_id) == account_id)
            .order_by(col(Subscription.created_at))
        )
        return list(rows)


async def test_continue_starts_a_trial_and_a_sibling_reuses_the_customer_with_a_discount(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
) -> None:
    # A cap of two commands per run: the three starts below also walk the workflow through continue-as-new.
    settings = make_settings(billing_continue_as_new_events=2)
    family = await make_family(sessions, children=2)
    first_lesson = datetime.now(UTC).replace(microsecond=0) + timedelta(days=6, hours=3)
    async with billing_worker(build_deps(settings, sessions, temporal_client)):
        methods, messages = [], []
        for student_id in family.student_ids:
            method = await card(stripe_client)
            enrollment_id = await make_enrollment(sessions, family, student_id, method)
            message = started_message(family, enrollment_id, student_id, method, first_regular_lesson_at=first_lesson)
            methods.append(method)
            messages.append(message)
        handle = await start_student(temporal_client, settings, messages[0])
        await start_student(temporal_client, settings, messages[0])  # the enrollment workflow retried: no effect

        async def first_subscribed() -> BillingAccount | None:
            async with sessions() as session:
                account = await session.scalar(
                    select(BillingAccount).where(col(BillingAccount.parent_id) == family.parent_id)
                )
            return account if account and len(await _subscriptions(sessions, account.id)) == 1 else None

        account = await eventually(first_subscribed, what="first subscription")
        await start_student(temporal_client, settings, messages[1])
        subs = await eventually(lambda: _two(sessions, account.id), what="the sibling's subscription")
        view = await handle.query("subscriptions")
        runs = [run async for run in temporal_client.list_workflows(f"WorkflowId = '{handle.id}'")]

    # One customer in Stripe, tagged with the family, reused for the sibling.
    customers = await stripe_client.v1.customers.list_async(params={"email": family.email})
    assert [c.id for c in customers.data] == [account.stripe_customer_id]
    customer = customers.data[0]
    assert customer.metadata is not None
    assert customer.metadata["cedar_parent_id"] == str(family.parent_id)
    assert customer.invoice_settings is not None
    assert customer.invoice_settings.default_payment_method == methods[1]
    stripe_subs = await stripe_client.v1.subscriptions.list_async(params={"customer": customer.id, "status": "all"})
    assert len(stripe_subs.data) == 2

    first, second = subs
    # 30-minute monthly piano: 3500 a week × 4; the demo is free, billing starts at the first regular lesson.
    assert (first.amount_minor, first.discount_percent) == (14000, 0)
    assert (second.amount_minor, second.discount_percent) == (12600, settings.sibling_discount_percent)
    assert second.stripe_plan_id == "cedar-piano-30-month-12600"
    for sub in subs:
        assert sub.status == "trialing"
        assert sub.trial_end == first_lesson
    assert [s["status"] for s in view["subscriptions"]] == ["trialing", "trialing"]  # carried over
    assert len(runs) >= 2


async def _two(sessions: SessionFactory, account_id: Any) -> list[Subscription] | None:
    subs = await _subscriptions(sessions, account_id)
    return subs if len(subs) == 2 else None
