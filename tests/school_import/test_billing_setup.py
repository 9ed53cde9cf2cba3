"""Billing for an imported school on the real stack: the office invites each family (one email per parent, by the
API or ``cedar import --invite-billing``), the parent gives a card, and each imported enrollment is handed to the
family's billing workflow once, billed from the next lesson period; nobody else can use the family's set-up."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import stripe
from sqlalchemy import func, select
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from core.contracts.billing import SIGNAL_STUDENT_STARTED, StudentStarted
from core.db import SessionFactory
from core.settings import Settings
from core.temporal import billing_workflow_id
from devstack.ports import free_port
from devstack.smtp_sink import SmtpSink
from domain.tuition import period_instants
from models import AuditLog, BillingAccount, Communication, Enrollment, Parent, Role, Subscription
from scripts.import_school import import_school
from tests.billing.conftest import card, ledger_problems, start_student
from tests.school_import.test_import import SAMPLE, calendar, cli, sample_school
from tests.waiting import eventually

HANNAH = "hannah.reyes@example.com"  # two children, two monthly lessons
OMAR = "omar.haddad@example.com"
PAUL = "paul.moreau@example.com"  # two weekly lessons of one child


async def parents(sessions: SessionFactory) -> dict[str, Parent]:
    async with sessions() as session:
        return {p.email: p for p in await session.scalars(select(Parent))}


async def enrollments_of(sessions: SessionFactory, parent_id: uuid.UUID) -> list[Enrollment]:
    async with sessions() as session:
        rows = await session.scalars(select(Enrollment).where(col(Enrollment.parent_id) == parent_id))
        return list(rows.all())


def invitations(sink: SmtpSink, parent_id: uuid.UUID, email: str) -> list[dict[str, Any]]:
    key = f"billing-setup-invite:{parent_id}"
    return [m for m in sink.messages(to=email) if m["headers"].get("X-Cedar-Dedup-Key") == key]


async def test_an_imported_family_is_invited_once_gives_its_card_and_is_billed_from_the_next_period(
    sessions: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
    billing_worker: Callable[..., Any],
    stripe_client: stripe.StripeClient,
    smtp_sink: SmtpSink,
) -> None:
    await calendar(sessions, settings)
    await import_school(settings, sessions, sample_school())
    family = await parents(sessions)
    hannah, omar = family[HANNAH], family[OMAR]
    admin = await auth_headers(Role.admin)
    as_hannah = await auth_headers(Role.parent, user_id=hannah.user_id)
    as_omar = await auth_headers(Role.parent, user_id=omar.user_id)
    setup = f"/api/v1/families/{hannah.id}/billing-setup"

    before = await http.get(setup, headers=as_hannah)
    assert before.status_code == 200, before.text
    assert before.json()["done"] is False
    assert before.json()["invited_at"] is None
    assert len(before.json()["awaiting"]) == 2

    # The office's invitation: one email, however often asked.
    first = await http.post(setup, headers=admin)
    assert first.status_code == 200, first.text
    assert first.json()["already_sent"] is False
    again = await http.post(setup, headers=admin)
    assert again.json() == {**first.json(), "already_sent": True}
    # The import's invitations: the other families; Hannah's was sent already.
    made = await import_school(settings, sessions, sample_school(invite_billing=True))
    assert (made.invites_sent, made.invites_sent_before, made.invites_failed) == (3, 1, [])
    [mail] = await eventually(lambda: _invitations(smtp_sink, hannah), what="Hannah's invitation")
    assert f"{settings.public_base_url}/billing/setup" in mail["text"]
    assert "set your password" in mail["text"]  # an imported parent has no password yet
    async with sessions() as session:
        sent = await session.scalar(
            select(func.count()).select_from(Communication).where(col(Communication.template) == "billing_setup_invite")
        )
        audited = await session.scalar(
            select(func.count()).select_from(AuditLog).where(col(AuditLog.entity_type) == "billing_setup")
        )
    assert (sent, audited) == (4, 4)
    assert len(invitations(smtp_sink, hannah.id, HANNAH)) == 1

    # Nobody else uses Hannah's set-up: another family, the office, a stranger.
    pm = await card(stripe_client)
    body = {"payment_method_id": pm}
    card_url = f"{setup}/card"
    assert (await http.get(setup, headers=as_omar)).status_code == 404
    assert (await http.put(card_url, json=body, headers=as_omar)).status_code == 404
    assert (await http.put(card_url, json=body, headers=admin)).status_code == 403
    assert (await http.put(card_url, json=body)).status_code == 401
    assert (await http.post(f"/api/v1/families/{omar.id}/billing-setup", headers=as_hannah)).status_code == 403
    bad = await http.put(card_url, json={"payment_method_id": "4242 4242"}, headers=as_hannah)
    assert bad.status_code == 422
    assert "payment_method_id" in bad.text
    unknown = await http.put(card_url, json={"payment_method_id": "pm_nosuchcard"}, headers=as_hannah)
    assert unknown.status_code == 422, unknown.text
    assert all(e.stripe_payment_method_id == "" for e in await enrollments_of(sessions, hannah.id))

    async with billing_worker():
        given = await http.put(card_url, json=body, headers=as_hannah)
        assert given.status_code == 200, given.text
        started = given.json()["started"]
        assert len(started) == 2
        now = datetime.now(UTC)
        next_month = period_instants(now, "month", settings.timezone)[1]
        assert {datetime.fromisoformat(s["billing_from"]) for s in started} == {next_month}

        async def subscriptions() -> list[Subscription]:
            async with sessions() as session:
                rows = await session.scalars(
                    select(Subscription)
                    .join(BillingAccount, col(BillingAccount.id) == col(Subscription.billing_account_id))
                    .where(col(BillingAccount.parent_id) == hannah.id)
                )
                return list(rows.all())

        subs = await eventually(subscriptions, until=lambda s: len(s) == 2, timeout=30, what="two subscriptions")
        enrollments = await enrollments_of(sessions, hannah.id)
        assert {s.enrollment_id for s in subs} == {e.id for e in enrollments}
        assert {e.stripe_payment_method_id for e in enrollments} == {pm}
        for sub in subs:
            assert sub.stripe_subscription_id is not None
            remote = await stripe_client.v1.subscriptions.retrieve_async(sub.stripe_subscription_id)
            assert remote.metadata["cedar_enrollment_id"] == str(sub.enrollment_id)
            # The free trial runs to the next lesson period: this month's lessons are not billed.
            assert remote.trial_end == int(next_month.timestamp())

        # A second submit (another card, even) starts nothing new.
        twice = await http.put(card_url, json={"payment_method_id": await card(stripe_client)}, headers=as_hannah)
        assert twice.status_code == 200, twice.text
        assert twice.json()["started"] == []
        account = await eventually(lambda: _account(sessions, hannah.id), what="Hannah's billing account")
        assert account.stripe_customer_id is not None
        customer = await stripe_client.v1.subscriptions.list_async(
            params={"customer": account.stripe_customer_id, "status": "all"}
        )
        assert len(customer.data) == 2
        assert {e.stripe_payment_method_id for e in await enrollments_of(sessions, hannah.id)} == {pm}

        # Nothing is charged before the next lesson period: Stripe's first invoice comes when the trial ends.
        invoices = await stripe_client.v1.invoices.list_async(params={"customer": account.stripe_customer_id})
        assert [i.amount_due for i in invoices.data if i.amount_due] == []
        assert await ledger_problems(sessions) == {}

    after = (await http.get(setup, headers=as_hannah)).json()
    assert (after["done"], after["awaiting"]) == (True, [])
    assert (await http.post(setup, headers=admin)).status_code == 409  # nothing left to invite to
    async with sessions() as session:
        handed = await session.scalar(
            select(func.count())
            .select_from(AuditLog)
            .where(col(AuditLog.action) == "billing_setup", col(AuditLog.actor_role) == "parent")
        )
    assert handed == 2


async def _invitations(sink: SmtpSink, parent: Parent) -> list[dict[str, Any]]:
    return invitations(sink, parent.id, parent.email)


async def _account(sessions: SessionFactory, parent_id: uuid.UUID) -> BillingAccount | None:
    async with sessions() as session:
        account: BillingAccount | None = await session.scalar(
            select(BillingAccount).where(col(BillingAccount.parent_id) == parent_id)
        )
    return account


async def test_the_command_line_invites_each_family_once(
    sessions: SessionFactory, settings: Settings, smtp_sink: SmtpSink
) -> None:
    await calendar(sessions, settings)
    files = [f"--{name}={SAMPLE / 'sample' / f'{name}.csv'}" for name in ("teachers", "families", "lessons")]
    # The mail server down: the school is imported all the same, and the command says what to run again.
    down = cli(settings, *files, "--invite-billing", CEDAR_SMTP_PORT=str(free_port()))
    assert down.returncode == 3, down.stderr
    assert down.stderr.count("could not be sent; run again with --invite-billing") == 4
    assert "weekly lessons: 6 created, 0 unchanged" in down.stdout
    mail = {"CEDAR_SMTP_PORT": str(settings.smtp_port)}
    sent = cli(settings, *files, "--invite-billing", **mail)
    assert sent.returncode == 0, sent.stderr
    assert "billing invitations: 4 sent, 0 sent before" in sent.stdout.splitlines()
    again = cli(settings, *files, "--invite-billing", **mail)
    assert again.returncode == 0, again.stderr
    assert "billing invitations: 0 sent, 4 sent before" in again.stdout.splitlines()
    for parent in (await parents(sessions)).values():
        assert len(invitations(smtp_sink, parent.id, parent.email)) == 1


async def _started_signals(client: Client, parent_id: uuid.UUID) -> int:
    history = await client.get_workflow_handle(billing_workflow_id(parent_id)).fetch_history()
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name == SIGNAL_STUDENT_STARTED
    )


async def test_an_enrollment_billing_has_already_is_not_handed_over_again(
    sessions: SessionFactory,
    settings: Settings,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
    billing_worker: Callable[..., Any],
    stripe_client: stripe.StripeClient,
    temporal_client: Client,
) -> None:
    """A submit that failed after handing one enrollment over (billing made its subscription, the mark was rolled
    back): the next submit marks it and hands over only the other."""
    await calendar(sessions, settings)
    await import_school(settings, sessions, sample_school())
    paul = (await parents(sessions))[PAUL]
    first, second = sorted(await enrollments_of(sessions, paul.id), key=lambda e: e.instrument)
    pm = await card(stripe_client)
    async with billing_worker():
        assert first.student_id is not None
        assert first.teacher_id is not None
        await start_student(
            temporal_client,
            settings,
            StudentStarted(
                enrollment_id=first.id,
                parent_id=paul.id,
                student_id=first.student_id,
                teacher_id=first.teacher_id,
                instrument=first.instrument,
                lesson_minutes=first.lesson_minutes,
                billing_interval=first.billing_interval,
                stripe_payment_method_id=pm,
                first_regular_lesson_at=datetime.now(UTC) + timedelta(days=7),
            ),
        )

        async def subscribed() -> int:
            async with sessions() as session:
                found = await session.scalar(
                    select(func.count()).select_from(Subscription).where(col(Subscription.enrollment_id) == first.id)
                )
            return int(found or 0)

        await eventually(subscribed, what="the first enrollment's subscription")
        as_paul = await auth_headers(Role.parent, user_id=paul.user_id)
        given = await http.put(
            f"/api/v1/families/{paul.id}/billing-setup/card", json={"payment_method_id": pm}, headers=as_paul
        )
        assert given.status_code == 200, given.text
        assert {s["enrollment_id"] for s in given.json()["started"]} == {str(first.id), str(second.id)}
        # A signal sent while a workflow task runs reaches the history when the task completes.
        await eventually(
            lambda: _started_signals(temporal_client, paul.id), until=lambda n: n >= 2, what="the second start"
        )
        assert await _started_signals(temporal_client, paul.id) == 2
    assert {e.stripe_payment_method_id for e in await enrollments_of(sessions, paul.id)} == {pm}
