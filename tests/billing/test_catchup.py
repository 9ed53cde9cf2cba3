"""Missed webhooks: a payment Stripe made while our endpoint was unreachable is recovered by the scheduled
catch-up, through the webhook's own path, and the checkpoint moves on; completed lessons become revenue."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select
from sqlmodel import col
from temporalio.client import Client

from core.contracts.scheduled import STRIPE_CATCHUP_WORKFLOW, CatchUpRequest, CatchUpResult
from core.db import SessionFactory, transaction
from core.settings import Settings
from devstack.localstripe import LocalStripe
from models import Invoice, JournalEntry, Lesson, Payment, StripeEvent, Subscription, SystemSetting
from tests.billing.conftest import WEBHOOK_ID, Billed, BillFamily, count, ledger_problems
from tests.waiting import eventually


async def test_a_missed_webhook_is_recovered_by_the_scheduled_catch_up(
    bill_family: BillFamily,
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
        billed = await bill_family()
        # Stripe renews on its own; the delivery of its events fails and is never retried (localstripe).
        invoice = await stripe_client.v1.invoices.create_async(
            params={
                "customer": billed.customer_id,
                "subscription": billed.stripe_subscription_id,
            }
        )
        await stripe_client.v1.invoices.pay_async(invoice.id)
        assert await count(sessions, Payment) == 0

        await _complete_a_lesson(sessions, billed)
        # An event that came before the family was ours: kept as unknown_customer, handed over now.
        early = f"evt_early_{uuid.uuid4().hex[:10]}"
        async with transaction(sessions) as session:
            session.add(
                StripeEvent(
                    stripe_event_id=early,
                    type="customer.subscription.created",
                    stripe_customer_id=billed.account.stripe_customer_id,
                    status="unknown_customer",
                    payload={
                        "id": early,
                        "type": "customer.subscription.created",
                        "data": {
                            "object": {
                                "id": billed.subscription.stripe_subscription_id,
                                "object": "subscription",
                                "customer": billed.account.stripe_customer_id,
                            }
                        },
                    },
                )
            )
        # What the schedule (workers/schedules.py, every 15 minutes) starts.
        result = await temporal_client.execute_workflow(
            STRIPE_CATCHUP_WORKFLOW,
            CatchUpRequest(),
            id=f"catchup-{uuid.uuid4()}",
            task_queue=settings.task_queue,
            result_type=CatchUpResult,
        )
        assert result.handed_over >= 3
        assert result.lessons_recognized == 1

        async def recovered() -> bool:
            return await count(sessions, Payment, Payment.status == "succeeded") == 1

        await eventually(recovered, what="the missed payment recorded")
        await eventually(lambda: _settled(sessions, billed.customer_id), what="every recovered event acted on")
        again = await temporal_client.execute_workflow(
            STRIPE_CATCHUP_WORKFLOW,
            CatchUpRequest(),
            id=f"catchup-{uuid.uuid4()}",
            task_queue=settings.task_queue,
            result_type=CatchUpResult,
        )
        assert (again.stored, again.handed_over, again.lessons_recognized) == (0, 0, 0)

    async with sessions() as session:
        row = await session.scalar(select(Invoice).where(col(Invoice.stripe_invoice_id) == invoice.id))
        sources = set(
            await session.scalars(select(col(StripeEvent.source)).where(col(StripeEvent.stripe_event_id) != early))
        )
        checkpoint = await session.get(SystemSetting, "stripe_events_checkpoint")
    assert row is not None
    assert row.status == "paid"
    assert sources == {"catchup"}
    assert await count(sessions, StripeEvent, StripeEvent.stripe_event_id == early, StripeEvent.status == "processed")
    earned = await count(sessions, JournalEntry, JournalEntry.kind == "lesson_completed")
    assert earned == 1  # a quarter of the monthly 14 000: Dr deferred revenue, Cr lesson revenue
    assert checkpoint is not None
    assert checkpoint.value >= invoice.created
    assert await ledger_problems(sessions) == {}


async def _settled(sessions: SessionFactory, customer_id: str) -> bool:
    # Scoped to this family: localstripe is shared, so other tests' recent events are in Stripe's list too.
    pending = await count(sessions, StripeEvent, col(StripeEvent.status).in_(["received", "failed"]))
    paid = await count(
        sessions,
        StripeEvent,
        StripeEvent.type == "invoice.payment_succeeded",
        StripeEvent.stripe_customer_id == customer_id,
    )
    return pending == 0 and paid == 1


async def _complete_a_lesson(sessions: SessionFactory, billed: Billed) -> None:
    async with transaction(sessions) as session:
        sub = await session.get(Subscription, billed.subscription.id)
        assert sub is not None
        start = datetime.now(UTC) - timedelta(hours=2)
        session.add(
            Lesson(
                kind="regular",
                status="completed",
                teacher_id=billed.family.teacher_id,
                student_id=sub.student_id,
                enrollment_id=sub.enrollment_id,
                starts_at=start,
                ends_at=start + timedelta(minutes=30),
            )
        )
