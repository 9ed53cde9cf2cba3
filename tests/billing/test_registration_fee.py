"""The registration fee (settings.registration_fee_minor): a one-off charge made once per enrollment when its
billing starts, on the first lessons invoice or paid at once; a re-delivered start charges it once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import stripe
from sqlalchemy import select
from sqlmodel import col
from temporalio.client import Client
from temporalio.worker import Replayer

from core.db import SessionFactory
from core.settings import Settings
from models import BillingAccount, Payment, Posting, Role, Subscription
from tests.billing.conftest import (
    Billed,
    card,
    ledger_problems,
    make_enrollment,
    make_family,
    renew_and_pay,
    start_student,
    started_message,
)
from tests.waiting import eventually
from workers.main import build_deps
from workflows.billing import LESSON_PERIODS_PATCH, REGISTRATION_FEE_PATCH, STRIPE_CYCLE_PATCH, FamilyBillingWorkflow

FEE = 3000
PLAN = 14000  # 30-minute monthly piano


async def _balances(sessions: SessionFactory) -> dict[str, int]:
    async with sessions() as session:
        rows = (await session.execute(select(col(Posting.account_code), col(Posting.amount_minor)))).all()
    totals: dict[str, int] = {}
    for code, amount in rows:
        totals[code] = totals.get(code, 0) + amount
    return totals


async def _started_twice(
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    registration_fee: bool = True,
) -> Billed:
    """A student started, and the same start delivered again (the enrollment workflow retried)."""
    family = await make_family(sessions)
    method = await card(stripe_client)
    enrollment_id = await make_enrollment(sessions, family, family.student_ids[0], method)
    message = started_message(family, enrollment_id, family.student_ids[0], method)
    message.registration_fee = registration_fee
    handle = await start_student(temporal_client, settings, message)
    await start_student(temporal_client, settings, message)

    async def subscribed() -> tuple[BillingAccount, Subscription] | None:
        async with sessions() as session:
            sub = await session.scalar(select(Subscription).where(col(Subscription.enrollment_id) == enrollment_id))
            account = await session.get(BillingAccount, sub.billing_account_id) if sub else None
        return (account, sub) if account and sub else None

    account, sub = await eventually(subscribed, what="subscription")
    return Billed(family, account, sub, handle)


async def test_the_fee_goes_on_the_first_invoice_once(
    billing_worker: Callable[..., Any],
    make_settings: Callable[..., Settings],
    sessions: SessionFactory,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    settings = make_settings(registration_fee_minor=FEE)
    async with billing_worker(build_deps(settings, sessions, temporal_client)):
        admin = await auth_headers(Role.admin)
        billed = await _started_twice(settings, sessions, temporal_client, stripe_client)
        # The renewal is queued after both starts: the first lessons invoice, with whatever they left pending.
        payment = await renew_and_pay(http, sessions, billed, admin)
        history = await billed.handle.fetch_history()

    assert payment.amount_minor == PLAN + FEE
    pending = await stripe_client.v1.invoice_items.list_async(params={"customer": billed.customer_id})
    assert pending.data == []  # nothing left for a later invoice
    invoices = await stripe_client.v1.invoices.list_async(params={"customer": billed.customer_id})
    lines = [line for invoice in invoices.data for line in invoice.lines.data]
    assert [line.amount for line in lines if line.description == "Registration fee"] == [FEE]
    balances = await _balances(sessions)
    assert balances["other_revenue"] == -FEE
    assert await ledger_problems(sessions) == {}
    # The new step is behind its patch, and the history replays.
    markers = [
        e.marker_recorded_event_attributes for e in history.events if e.HasField("marker_recorded_event_attributes")
    ]
    patches = [p.data for m in markers if m.marker_name == "core_patch" for p in m.details["patch-data"].payloads]
    fee_steps = (STRIPE_CYCLE_PATCH, REGISTRATION_FEE_PATCH, LESSON_PERIODS_PATCH)
    patches = [p for p in patches if any(f'"{name}"'.encode() in p for name in fee_steps)]
    assert patches == [
        f'{{"id":"{patch}","deprecated":false}}'.encode()
        for patch in (STRIPE_CYCLE_PATCH, REGISTRATION_FEE_PATCH, LESSON_PERIODS_PATCH)
    ]
    await Replayer(workflows=[FamilyBillingWorkflow], data_converter=temporal_client.data_converter).replay_workflow(
        history
    )


async def test_the_fee_now_is_paid_at_once_and_once(
    billing_worker: Callable[..., Any],
    make_settings: Callable[..., Settings],
    sessions: SessionFactory,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    settings = make_settings(registration_fee_minor=FEE, registration_fee_when="now")
    async with billing_worker(build_deps(settings, sessions, temporal_client)):
        admin = await auth_headers(Role.admin)
        billed = await _started_twice(settings, sessions, temporal_client, stripe_client)

        async def fee_paid() -> list[Payment] | None:
            async with sessions() as session:
                rows = (
                    await session.scalars(select(Payment).where(col(Payment.billing_account_id) == billed.account.id))
                ).all()
            return list(rows) or None

        assert [(p.amount_minor, p.status) for p in await eventually(fee_paid, what="the fee paid")] == [
            (FEE, "succeeded")
        ]
        renewal = await http.post(f"/api/v1/billing/subscriptions/{billed.subscription.id}/renewals", headers=admin)
        assert renewal.json()["status"] == "paid", renewal.text

    async with sessions() as session:
        payments = (
            await session.scalars(select(Payment).where(col(Payment.billing_account_id) == billed.account.id))
        ).all()
    assert sorted(p.amount_minor for p in payments) == [FEE, PLAN]  # the second start charged nothing
    balances = await _balances(sessions)
    assert balances["other_revenue"] == -FEE
    assert await ledger_problems(sessions) == {}


async def test_a_family_that_registered_before_cedar_pays_no_fee(
    billing_worker: Callable[..., Any],
    make_settings: Callable[..., Settings],
    sessions: SessionFactory,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    settings = make_settings(registration_fee_minor=FEE)
    async with billing_worker(build_deps(settings, sessions, temporal_client)):
        admin = await auth_headers(Role.admin)
        # An imported enrollment's start (api/services/billing_setup.py) says the family registered already.
        billed = await _started_twice(settings, sessions, temporal_client, stripe_client, registration_fee=False)
        payment = await renew_and_pay(http, sessions, billed, admin)

    assert payment.amount_minor == PLAN
    invoices = await stripe_client.v1.invoices.list_async(params={"customer": billed.customer_id})
    assert [
        line for invoice in invoices.data for line in invoice.lines.data if line.description == "Registration fee"
    ] == []
    assert (await _balances(sessions)).get("other_revenue", 0) == 0
    assert await ledger_problems(sessions) == {}
