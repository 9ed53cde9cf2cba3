"""Billing's harness: a worker with billing's workflows and a stand-in for dunning, the real app served over HTTP
(localstripe posts its signed webhooks to it), and families created directly in the database."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import stripe
import uvicorn
from sqlalchemy import func, select
from sqlmodel import col
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.stripe_inbox import summarize
from api.main import create_app
from core.contracts.billing import FAMILY_BILLING_WORKFLOW, SIGNAL_STUDENT_STARTED, FamilyBillingInput, StudentStarted
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.stripe import create_stripe_client
from core.temporal import billing_workflow_id
from devstack.localstripe import LocalStripe
from devstack.ports import free_port
from models import BillingAccount, Enrollment, Parent, Payment, Posting, Role, Student, Subscription, Teacher, User
from tests.billing.dunning_stand_in import DunningStandIn
from tests.waiting import eventually
from tests.worker_exit import running
from workers.registry import WorkerDeps, activity_functions
from workers.stripe_forwarder import StripeEventForwarder
from workflows.billing import FamilyBillingWorkflow
from workflows.stripe_catchup import StripeCatchupWorkflow

WEBHOOK_ID = "cedar-billing-tests"
CARD_OK = "4242424242424242"


@pytest.fixture
def billing_worker(
    temporal_client: Client, worker_deps: WorkerDeps
) -> Callable[..., AbstractAsyncContextManager[Worker]]:
    """A worker for billing's workflows (dunning replaced by the stand-in), with every activity, and the
    forwarder that hands webhooks' events over."""

    @asynccontextmanager
    async def run(deps: WorkerDeps | None = None) -> AsyncIterator[Worker]:
        deps = deps or worker_deps
        worker = Worker(
            temporal_client,
            task_queue=deps.settings.task_queue,
            workflows=[FamilyBillingWorkflow, StripeCatchupWorkflow, DunningStandIn],
            activities=activity_functions(deps),
        )
        # As in a worker process: the webhook's new events are handed over from here, not from the API.
        async with running(worker), StripeEventForwarder(deps.settings, deps.sessions, temporal_client).running():
            yield worker

    return run


@pytest.fixture
async def served_api(settings: Settings) -> AsyncIterator[str]:
    """The real app over HTTP on a free port (localstripe must reach it), with its lifespan running."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await eventually(lambda: _started(server), timeout=10, what="uvicorn")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


async def _started(server: uvicorn.Server) -> bool:
    return server.started


@pytest.fixture
def webhooks(localstripe: LocalStripe, served_api: str, settings: Settings) -> str:
    """localstripe posts its events, signed with the test secret, to this test's app."""
    url = f"{served_api}/api/v1/webhooks/stripe"
    localstripe.register_webhook(url, settings.stripe_webhook_secrets[0], WEBHOOK_ID)
    return url


@pytest.fixture
def stripe_client(settings: Settings) -> stripe.StripeClient:
    return create_stripe_client(settings)


@dataclass
class Family:
    parent_id: uuid.UUID
    user_id: uuid.UUID
    email: str
    teacher_id: uuid.UUID
    student_ids: list[uuid.UUID]


async def make_family(sessions: SessionFactory, children: int = 1) -> Family:
    tag = uuid.uuid4().hex[:8]
    async with transaction(sessions) as session:
        user = User(email=f"parent-{tag}@family.test", role=Role.parent)
        session.add(user)
        await session.flush()
        parent = Parent(user_id=user.id, first_name="Robin", last_name="Okafor", email=user.email, phone="604-555-0101")
        teacher = Teacher(
            first_name="Ada",
            last_name="Keys",
            display_name="Ada K.",
            email=f"teacher-{tag}@school.test",
            instruments=["piano", "guitar"],
        )
        session.add_all([parent, teacher])
        await session.flush()
        students = [
            Student(parent_id=parent.id, first_name=f"Kid{n}", last_name="Okafor", date_of_birth=date(2014 + n, 3, 1))
            for n in range(children)
        ]
        session.add_all(students)
    return Family(parent.id, user.id, user.email, teacher.id, [s.id for s in students])


async def family_with_customer(sessions: SessionFactory) -> tuple[uuid.UUID, str]:
    """A family whose billing account names a Stripe customer (none is made in Stripe): its parent and customer."""
    parent_id = (await make_family(sessions)).parent_id
    customer = f"cus_family_{uuid.uuid4().hex[:10]}"
    async with transaction(sessions) as session:
        session.add(
            BillingAccount(parent_id=parent_id, stripe_customer_id=customer, workflow_id=billing_workflow_id(parent_id))
        )
    return parent_id, customer


async def make_enrollment(
    sessions: SessionFactory,
    family: Family,
    student_id: uuid.UUID,
    payment_method_id: str,
    instrument: str = "piano",
    minutes: int = 30,
    interval: str = "month",
) -> uuid.UUID:
    async with transaction(sessions) as session:
        enrollment = Enrollment(
            request_hash="0" * 64,
            workflow_id=f"enrollment-{uuid.uuid4()}",
            state="active",
            parent_id=family.parent_id,
            student_id=student_id,
            teacher_id=family.teacher_id,
            instrument=instrument,
            lesson_minutes=minutes,
            billing_interval=interval,
            stripe_payment_method_id=payment_method_id,
        )
        session.add(enrollment)
    return enrollment.id


async def card(client: stripe.StripeClient, number: str = CARD_OK) -> str:
    """A PaymentMethod as Stripe.js would have made it in the parent's browser."""
    method = await client.v1.payment_methods.create_async(
        params={"type": "card", "card": {"number": number, "exp_month": 12, "exp_year": 2031, "cvc": "123"}}
    )
    return str(method.id)


def started_message(
    family: Family, enrollment_id: uuid.UUID, student_id: uuid.UUID, payment_method_id: str, **overrides: Any
) -> StudentStarted:
    values: dict[str, Any] = {
        "enrollment_id": enrollment_id,
        "parent_id": family.parent_id,
        "student_id": student_id,
        "teacher_id": family.teacher_id,
        "instrument": "piano",
        "lesson_minutes": 30,
        "billing_interval": "month",
        "stripe_payment_method_id": payment_method_id,
        "first_regular_lesson_at": datetime.now(UTC) + timedelta(days=7),
    }
    values.update(overrides)
    return StudentStarted(**values)


async def start_student(client: Client, settings: Settings, message: StudentStarted) -> WorkflowHandle[Any, Any]:
    """What the enrollment workflow does on `continue`: signal-with-start the family's billing workflow."""
    return await client.start_workflow(
        FAMILY_BILLING_WORKFLOW,
        FamilyBillingInput(parent_id=message.parent_id),
        id=billing_workflow_id(message.parent_id),
        task_queue=settings.task_queue,
        start_signal=SIGNAL_STUDENT_STARTED,
        start_signal_args=[message],
    )


async def dunning_received(client: Client, parent_id: uuid.UUID) -> list[dict[str, Any]]:
    try:
        handle = client.get_workflow_handle(f"family-dunning-{parent_id}")
        result: list[dict[str, Any]] = await handle.query("received")
        return result
    except Exception:  # not started yet
        return []


@pytest.fixture
async def http(served_api: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=served_api, timeout=30) as client:
        yield client


def sign(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for ``payload``, as Stripe computes it."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def stripe_event(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """An event as Stripe sends it (a fresh id, now), for what localstripe does not send itself."""
    return {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


async def post_event(http: httpx.AsyncClient, event: dict[str, Any], secret: str) -> httpx.Response:
    payload = json.dumps(event).encode()
    return await http.post(
        "/api/v1/webhooks/stripe",
        content=payload,
        headers={"Stripe-Signature": sign(payload, secret), "Content-Type": "application/json"},
    )


async def customer_events(client: stripe.StripeClient, customer_id: str) -> list[dict[str, Any]]:
    """Every event localstripe holds about one customer, oldest first."""
    page = await client.v1.events.list_async(params={"limit": 100})
    events = [e.to_dict() for e in page.data]
    while page.has_more:
        page = await client.v1.events.list_async(params={"limit": 100, "starting_after": page.data[-1].id})
        events += [e.to_dict() for e in page.data]
    mine = [e for e in events if summarize(e)[0] == customer_id]
    return sorted(mine, key=lambda e: e["created"])


async def ledger_problems(sessions: SessionFactory) -> dict[str, int]:
    """Entries that do not sum to zero (should be none), and the trial balance's total (should be 0)."""
    async with sessions() as session:
        rows = await session.execute(
            select(col(Posting.entry_id), func.sum(col(Posting.amount_minor))).group_by(col(Posting.entry_id))
        )
        unbalanced = {str(entry): int(total) for entry, total in rows.all() if total != 0}
        total = await session.scalar(select(func.coalesce(func.sum(Posting.amount_minor), 0)))
    return {**unbalanced, "trial_balance_total": int(total or 0)} if unbalanced or total else {}


async def count(sessions: SessionFactory, model: Any, *where: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@dataclass
class Billed:
    """A family with a trial subscription on a card, ready to be renewed."""

    family: Family
    account: BillingAccount
    subscription: Subscription
    handle: WorkflowHandle[Any, Any]

    @property
    def customer_id(self) -> str:
        """The family's Stripe customer: a billed family has one."""
        assert self.account.stripe_customer_id is not None
        return self.account.stripe_customer_id

    @property
    def stripe_subscription_id(self) -> str:
        """The subscription's id in Stripe: a billed family's subscription has one."""
        assert self.subscription.stripe_subscription_id is not None
        return self.subscription.stripe_subscription_id


async def billed_family(
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    number: str = CARD_OK,
) -> Billed:
    family = await make_family(sessions)
    method = await card(stripe_client, number)
    enrollment_id = await make_enrollment(sessions, family, family.student_ids[0], method)
    handle = await start_student(
        temporal_client, settings, started_message(family, enrollment_id, family.student_ids[0], method)
    )

    async def subscribed() -> tuple[BillingAccount, Subscription] | None:
        async with sessions() as session:
            sub = await session.scalar(select(Subscription).where(col(Subscription.enrollment_id) == enrollment_id))
            account = await session.get(BillingAccount, sub.billing_account_id) if sub else None
        return (account, sub) if account and sub else None

    account, sub = await eventually(subscribed, what="subscription")
    return Billed(family, account, sub, handle)


BillFamily = Callable[..., Awaitable[Billed]]


@pytest.fixture
def bill_family(
    sessions: SessionFactory, settings: Settings, temporal_client: Client, stripe_client: stripe.StripeClient
) -> BillFamily:
    """``await bill_family(card_number)`` → ``billed_family`` on this test's database, settings and Stripe."""

    async def bill(number: str = CARD_OK) -> Billed:
        return await billed_family(sessions, settings, temporal_client, stripe_client, number)

    return bill


async def renew_and_pay(
    http: httpx.AsyncClient, sessions: SessionFactory, billed: Billed, admin: dict[str, str]
) -> Payment:
    """The development renewal of ``billed``'s subscription, paid: its succeeded payment."""
    renewal = await http.post(f"/api/v1/billing/subscriptions/{billed.subscription.id}/renewals", headers=admin)
    assert renewal.json()["status"] == "paid", renewal.text
    async with sessions() as session:
        payment = await session.scalar(
            select(Payment).where(
                col(Payment.billing_account_id) == billed.account.id, col(Payment.status) == "succeeded"
            )
        )
    assert payment is not None
    assert payment.stripe_charge_id
    return payment
