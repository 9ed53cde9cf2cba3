"""Billing's Stripe calls run on their own queue, served by a worker whose rate the server caps for every worker of
that queue: with no such worker the family's start waits; with one, it completes through it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import func, select
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.stripe import StripeActivities
from core.db import SessionFactory
from core.settings import Settings
from models import BillingAccount, Subscription
from tests.billing.conftest import card, make_enrollment, make_family, start_student, started_message
from tests.waiting import eventually
from workers.main import build_deps, build_stripe_worker


async def _subscriptions(sessions: SessionFactory, parent_id: Any) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(Subscription)
                .join(BillingAccount, col(BillingAccount.id) == col(Subscription.billing_account_id))
                .where(col(BillingAccount.parent_id) == parent_id)
            )
            or 0
        )


async def test_billings_stripe_calls_go_through_the_rate_limited_stripe_queue(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
) -> None:
    base = make_settings()
    settings = make_settings(stripe_task_queue=f"{base.task_queue}-stripe", stripe_calls_per_second=5.0)
    deps = build_deps(settings, sessions, temporal_client)
    stripe_worker = build_stripe_worker(temporal_client, deps)
    assert stripe_worker is not None
    assert stripe_worker.config()["max_task_queue_activities_per_second"] == 5.0
    registered = {getattr(f, "__self__", None).__class__ for f in stripe_worker.config()["activities"]}
    assert registered == {StripeActivities}

    family = await make_family(sessions, children=1)
    method = await card(stripe_client)
    enrollment_id = await make_enrollment(sessions, family, family.student_ids[0], method)
    first_lesson = datetime.now(UTC).replace(microsecond=0) + timedelta(days=6, hours=3)
    message = started_message(
        family, enrollment_id, family.student_ids[0], method, first_regular_lesson_at=first_lesson
    )

    async with billing_worker(deps):
        handle = await start_student(temporal_client, settings, message)

        async def waiting_on_the_stripe_queue() -> bool:
            description = await handle.describe()
            return any(
                a.activity_type.name == "stripe_ensure_customer" for a in description.raw_description.pending_activities
            )

        # Billing's own worker does not serve Stripe calls: the first one waits on the Stripe queue.
        await eventually(waiting_on_the_stripe_queue, what="a Stripe call pending on the Stripe queue")
        assert await _subscriptions(sessions, family.parent_id) == 0

        async with stripe_worker:
            await eventually(
                lambda: _subscriptions(sessions, family.parent_id), what="the subscription, through the Stripe queue"
            )

    history = await handle.fetch_history()
    queues = {
        event.activity_task_scheduled_event_attributes.activity_type.name: (
            event.activity_task_scheduled_event_attributes.task_queue.name
        )
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
    }
    stripe_calls = {name for name in queues if name.startswith("stripe_")}
    assert stripe_calls >= {"stripe_ensure_customer", "stripe_attach_card"}
    assert {queues[name] for name in stripe_calls} == {settings.stripe_task_queue}
