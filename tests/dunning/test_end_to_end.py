"""Dunning with billing's real workflow, localstripe and the ledger: a card that attaches but declines every charge
walks the family to cancelled with bad debt posted; the nightly reconciliation repairs a lost webhook."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlmodel import col
from temporalio.client import Client

from core.contracts.scheduled import RECONCILIATION_WORKFLOW
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.stripe import create_stripe_client
from core.temporal import dunning_workflow_id
from models import BillingAccount, Communication, Invoice, JournalEntry, Lesson, Payment, Role, Subscription, Teacher
from tests.billing.conftest import billed_family, ledger_problems
from tests.waiting import eventually
from workers.main import build_deps, build_worker

ATTACHES_THEN_DECLINES = "4000000000000341"
ENDED = ("canceled", "incomplete_expired")
# Wider than the stand-in tests': every retry here is a real charge through billing and localstripe.
E2E_TIMINGS: dict[str, Any] = {
    "dunning_warning_after": timedelta(seconds=4),
    "dunning_suspend_after": timedelta(seconds=8),
    "dunning_cancel_after": timedelta(seconds=12),
    "dunning_retry_offsets": [timedelta(seconds=1), timedelta(seconds=3), timedelta(seconds=6), timedelta(seconds=10)],
    "dunning_unknown_recheck_after": timedelta(seconds=6),
}


async def _add_lessons(sessions: SessionFactory, student_id: uuid.UUID, teacher_id: uuid.UUID) -> None:
    async with transaction(sessions) as session:
        await session.execute(update(Teacher).where(col(Teacher.id) == teacher_id).values(active_students=1))
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
        for week in range(2):
            at = start + timedelta(weeks=week)
            session.add(
                Lesson(
                    kind="regular",
                    teacher_id=teacher_id,
                    student_id=student_id,
                    starts_at=at,
                    ends_at=at + timedelta(minutes=30),
                )
            )


async def test_a_card_that_always_declines_ends_cancelled_with_bad_debt_posted(
    make_settings: Callable[..., Settings],
    sessions: SessionFactory,
    temporal_client: Client,
    api: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    settings = make_settings(**E2E_TIMINGS)
    stripe_client = create_stripe_client(settings)
    async with build_worker(temporal_client, build_deps(settings, sessions, temporal_client)):
        billed = await billed_family(sessions, settings, temporal_client, stripe_client, ATTACHES_THEN_DECLINES)
        student_id, teacher_id = billed.family.student_ids[0], billed.family.teacher_id
        await _add_lessons(sessions, student_id, teacher_id)
        admin = await auth_headers(Role.admin)
        renewal = await api.post(f"/api/v1/billing/subscriptions/{billed.subscription.id}/renewals", headers=admin)
        assert renewal.status_code == 201, renewal.text
        stripe_invoice_id = renewal.json()["stripe_invoice_id"]

        dunning = temporal_client.get_workflow_handle(dunning_workflow_id(billed.family.parent_id))
        assert await eventually(dunning.result, timeout=40, what="dunning to finish") == "cancelled"

        async def written_off() -> bool:
            async with sessions() as session:
                invoice = await session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == stripe_invoice_id))
                sub = await session.get(Subscription, billed.subscription.id)
            return (
                invoice is not None
                and invoice.status == "uncollectible"
                and sub is not None
                and sub.status in ENDED  # localstripe ends a never-paid subscription as incomplete_expired
            )

        await eventually(written_off, timeout=20, what="billing's write-off")

    async with sessions() as session:
        bad_debt = await session.scalar(
            select(JournalEntry).where(col(JournalEntry.idempotency_key) == f"bad_debt_written_off:{stripe_invoice_id}")
        )
        invoice = await session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == stripe_invoice_id))
        account = await session.scalar(
            select(BillingAccount).where(col(BillingAccount.parent_id) == billed.family.parent_id)
        )
        lessons = list(await session.scalars(select(col(Lesson.status)).where(col(Lesson.student_id) == student_id)))
        teacher = await session.get(Teacher, teacher_id)
        collected = await session.scalar(
            select(col(Payment.id)).where(
                col(Payment.billing_account_id) == billed.account.id, col(Payment.status) == "succeeded"
            )
        )
    assert bad_debt is not None
    assert invoice is not None
    assert invoice.attempt_count >= 3  # the original charge and dunning's retries
    assert account is not None
    assert account.dunning_state == "cancelled"
    assert lessons == ["cancelled", "cancelled"]
    assert teacher is not None
    assert teacher.active_students == 0
    assert collected is None  # nothing was ever collected
    assert await ledger_problems(sessions) == {}
    async with sessions() as session:
        templates = list(
            await session.scalars(
                select(col(Communication.template))
                .where(col(Communication.parent_id) == billed.family.parent_id, col(Communication.status) == "sent")
                .order_by(col(Communication.created_at))
            )
        )
    dunning_mail = [t for t in templates if t.startswith("dunning_")]
    assert dunning_mail[0] == "dunning_payment_failed"
    assert dunning_mail[-1] == "dunning_cancelled"
    assert {"dunning_final_warning", "dunning_suspended"} <= set(dunning_mail)


async def test_reconciliation_repairs_a_payment_whose_webhook_was_lost(
    settings: Settings, sessions: SessionFactory, temporal_client: Client
) -> None:
    stripe_client = create_stripe_client(settings)
    async with build_worker(temporal_client, build_deps(settings, sessions, temporal_client)):
        billed = await billed_family(sessions, settings, temporal_client, stripe_client)
        # Stripe renews and collects on its own; no webhook reaches us (none is registered in this test).
        invoice = await stripe_client.v1.invoices.create_async(
            params={
                "customer": billed.customer_id,
                "subscription": billed.stripe_subscription_id,
            }
        )
        await stripe_client.v1.invoices.pay_async(invoice.id)
        report = await temporal_client.execute_workflow(
            RECONCILIATION_WORKFLOW,
            {"parent_id": str(billed.family.parent_id)},
            id=f"reconcile-{uuid.uuid4()}",
            task_queue=settings.task_queue,
        )
        [difference] = [d for d in report["differences"] if d["stripe_invoice_id"] == invoice.id]
        assert difference["kind"] == "invoice_missing"
        assert difference["repair"].startswith("fed evt_")

        async def repaired() -> Invoice | None:
            async with sessions() as session:
                row = await session.scalar(select(Invoice).where(col(Invoice.stripe_invoice_id) == invoice.id))
            return row if row is not None and row.status == "paid" else None

        row = await eventually(repaired, timeout=20, what="the lost payment recorded")
        async with sessions() as session:
            payment = await session.scalar(select(Payment).where(col(Payment.invoice_id) == row.id))
        assert payment is not None
        assert payment.status == "succeeded"

        # Once repaired, a second run finds our books and Stripe's in agreement, except what it cannot repair:
        # an invoice of ours that Stripe has never heard of is reported for a person, and left alone.
        async with transaction(sessions) as session:
            session.add(
                Invoice(
                    billing_account_id=billed.account.id,
                    stripe_invoice_id="in_ghost",
                    status="open",
                    amount_due_minor=500,
                )
            )
        again = await temporal_client.execute_workflow(
            RECONCILIATION_WORKFLOW,
            {"parent_id": str(billed.family.parent_id)},
            id=f"reconcile-{uuid.uuid4()}",
            task_queue=settings.task_queue,
        )
    assert [(d["kind"], d["stripe_invoice_id"], d["repair"]) for d in again["differences"]] == [
        ("unknown_to_stripe", "in_ghost", None)
    ]
    assert again["invoices_checked"] >= 1
    assert await ledger_problems(sessions) == {}
