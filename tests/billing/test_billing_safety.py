"""Billing never fails silently: a start billing refuses reaches the enrollment, which closes failed and undone; a
second start changes nothing; a failing command is retried and then surfaced (search attribute, office email);
updates billing can refuse from its state are refused before history as a 4xx; an SMTP outage holds no refund;
the carried state of older runs still loads."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import delete, select
from sqlmodel import col
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from api.errors import CedarError
from api.services.billing import _update
from core.contracts.billing import (
    FAMILY_BILLING_WORKFLOW,
    QUERY_SUBSCRIPTIONS,
    SIGNAL_STRIPE_EVENT,
    SIGNAL_STUDENT_STARTED,
    UPDATE_CHANGE_CARD,
    UPDATE_RENEW,
    UPDATE_START_STUDENT,
    CardChange,
    CardResult,
    Command,
    FamilyBillingInput,
    FamilyBillingState,
    RenewRequest,
    RenewResult,
    StartOutcome,
    StripeEventReceived,
    SubscriptionsView,
)
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.temporal import BILLING_ATTENTION, BILLING_STATE, billing_workflow_id
from devstack.ports import free_port
from models import Communication, LessonRate, Payment, Role, Subscription, Teacher
from tests.billing.conftest import (
    BillFamily,
    billed_family,
    card,
    count,
    make_enrollment,
    make_family,
    renew_and_pay,
    start_student,
    started_message,
)
from tests.billing.dunning_stand_in import DunningStandIn
from tests.enrollment.helpers import enroll, enrollment_row, lessons_of, student_of, wait_for_state
from tests.waiting import eventually
from workers.main import build_deps
from workers.registry import WorkerDeps, activity_functions
from workflows.billing import FamilyBillingWorkflow
from workflows.enrollment import EnrollmentWorkflow


async def test_a_start_billing_refuses_closes_the_enrollment_failed_and_undone(
    api: httpx.AsyncClient,
    demo_data: None,
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    worker_deps: WorkerDeps,
    auth_headers: Callable[..., Any],
) -> None:
    worker = Worker(
        temporal_client,
        task_queue=settings.task_queue,
        workflows=[EnrollmentWorkflow, FamilyBillingWorkflow, DunningStandIn],
        activities=activity_functions(worker_deps),
    )
    async with worker:
        enrollment_id = await enroll(api)
        await wait_for_state(api, enrollment_id, "demo_scheduled", "awaiting_outcome")
        async with transaction(sessions) as session:  # the school stops offering the length: billing has no rate
            await session.execute(
                delete(LessonRate).where(col(LessonRate.instrument) == "piano", col(LessonRate.minutes) == 30)
            )
        answer = await api.post(
            f"/api/v1/enrollments/{enrollment_id}/demo-outcome",
            json={"outcome": "continue"},
            headers=await auth_headers(Role.admin),
        )
        assert answer.status_code == 200, answer.text
        failed = await wait_for_state(api, enrollment_id, "failed", timeout=60)
        # The parent is told, as on any failure.
        closed = col(Communication.dedup_key) == f"enrollment:{enrollment_id}:closed"
        await eventually(lambda: count(sessions, Communication, closed), what="the parent's closing email")
    assert failed["failure_reason"] == "billing could not start: no rate for piano 30 min"
    row = await enrollment_row(sessions, enrollment_id)
    assert (row.state, row.failure_reason) == ("failed", failed["failure_reason"])
    assert await lessons_of(sessions, enrollment_id, "scheduled") == []
    student = await student_of(sessions, enrollment_id)
    assert student is not None
    assert not student.is_active
    async with sessions() as session:
        teachers = (await session.scalars(select(Teacher))).all()
    assert all(t.active_students == 0 for t in teachers)
    assert await count(sessions, Subscription, col(Subscription.enrollment_id) == row.id) == 0


async def test_a_second_start_answers_the_first_and_starts_nothing(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
) -> None:
    async with billing_worker():
        billed = await bill_family()
        again = started_message(
            billed.family,
            billed.subscription.enrollment_id,
            billed.family.student_ids[0],
            await card(stripe_client),
        )
        first = await billed.handle.execute_update(UPDATE_START_STUDENT, again, result_type=StartOutcome)
        await billed.handle.signal(SIGNAL_STUDENT_STARTED, again)
        second = await billed.handle.execute_update(UPDATE_START_STUDENT, again, result_type=StartOutcome)
        view = await billed.handle.query(QUERY_SUBSCRIPTIONS, result_type=SubscriptionsView)
    assert first == second == StartOutcome(enrollment_id=billed.subscription.enrollment_id, status="started")
    assert len(view.subscriptions) == 1
    assert view.subscriptions[0].renewals == 0
    assert (
        await count(sessions, Subscription, col(Subscription.enrollment_id) == billed.subscription.enrollment_id) == 1
    )
    in_stripe = await stripe_client.v1.subscriptions.list_async(params={"customer": billed.customer_id})
    assert len(in_stripe.data) == 1


async def test_a_failing_command_is_retried_then_flagged_and_the_office_told(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
) -> None:
    settings = make_settings(billing_command_retry_after=timedelta(milliseconds=300), billing_command_attempts=3)
    async with billing_worker(build_deps(settings, sessions, temporal_client)):
        family = await make_family(sessions)
        method = await card(stripe_client)
        enrollment_id = await make_enrollment(sessions, family, family.student_ids[0], method, minutes=35)
        # An older enrollment's signal, nobody waiting: no rate for 35 minutes, refused at every try.
        handle = await start_student(
            temporal_client,
            settings,
            started_message(family, enrollment_id, family.student_ids[0], method, lesson_minutes=35),
        )

        async def flagged() -> str | None:
            attributes = (await handle.describe()).typed_search_attributes
            return attributes.get(BILLING_ATTENTION)

        assert await eventually(flagged, until=lambda v: v == "failed-commands", what="attention") == "failed-commands"
        office = col(Communication.template) == "billing_attention"
        await eventually(lambda: count(sessions, Communication, office), what="the office's email")
        async with sessions() as session:
            email = await session.scalar(select(Communication).where(office))
        assert email is not None
        assert (await handle.describe()).typed_search_attributes.get(BILLING_STATE) == "clear"
        # Still running: the single writer goes on.
        again = await handle.execute_update(
            UPDATE_START_STUDENT,
            started_message(family, enrollment_id, family.student_ids[0], method),
            result_type=StartOutcome,
        )
    assert again.status == "started"
    assert settings.office_email in str(email.recipient)


async def test_updates_refused_from_billings_state_are_a_4xx_before_history(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    settings: Settings,
    temporal_client: Client,
) -> None:
    async with billing_worker():
        billed = await bill_family()
        parent_id = billed.family.parent_id
        with pytest.raises(CedarError) as unknown:
            await _update(
                temporal_client,
                settings,
                parent_id,
                UPDATE_RENEW,
                RenewRequest(stripe_subscription_id="sub_x"),
                RenewResult,
            )
        other_family = started_message(
            billed.family, billed.subscription.enrollment_id, billed.family.student_ids[0], "pm_x"
        ).model_copy(update={"parent_id": uuid.uuid4()})
        with pytest.raises(CedarError) as wrong:
            await _update(temporal_client, settings, parent_id, UPDATE_START_STUDENT, other_family, StartOutcome)
        with pytest.raises(WorkflowUpdateFailedError) as direct:
            await billed.handle.execute_update(UPDATE_RENEW, RenewRequest(stripe_subscription_id="sub_x"))
        history = await billed.handle.fetch_history()
    assert (unknown.value.status_code, unknown.value.detail) == (404, "no live subscription to renew")
    assert (wrong.value.status_code, wrong.value.detail) == (422, "the student belongs to another family's billing")
    assert isinstance(direct.value.cause, ApplicationError)
    assert direct.value.cause.type == "NotFound"
    accepted = [e for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
    assert accepted == []  # refused updates leave nothing in the history


async def test_an_smtp_outage_holds_no_refund(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    mail_down = make_settings(smtp_port=free_port(), billing_email_attempts=50)  # nothing listens there
    async with billing_worker(build_deps(mail_down, sessions, temporal_client)):
        admin = await auth_headers(Role.admin)
        billed = await bill_family()
        payment = await renew_and_pay(http, sessions, billed, admin)
        refund = await http.post(
            f"/api/v1/billing/payments/{payment.id}/refunds", json={"amount_minor": 1000}, headers=admin
        )
        assert refund.status_code == 201, refund.text
        async with sessions() as session:
            unsent = await session.get(Payment, payment.id, populate_existing=True)
        assert unsent is not None
        assert unsent.receipt_sent_at is None  # the receipt is still trying beside the writer


def test_an_older_runs_plain_state_loads_as_the_typed_state() -> None:
    older = {
        "billing_account_id": str(uuid.uuid4()),
        "stripe_customer_id": "cus_1",
        "subscriptions": {},
        "open_invoices": {"in_1": {"stripe_invoice_id": "in_1", "status": "open", "amount_due_minor": 500}},
        "pending": [{"kind": "stripe_event", "payload": {"stripe_event_id": "evt_1"}, "reply_to": None}],
        "commands_handled": 7,
    }
    carried = FamilyBillingInput.model_validate({"parent_id": str(uuid.uuid4()), "state": older})
    assert isinstance(carried.state, FamilyBillingState)
    assert (carried.state.version, carried.state.commands_handled, carried.state.pending[0].attempt) == (1, 7, 1)
    assert carried.state.started == {}
    assert carried.state.failed == []
    again = FamilyBillingInput.model_validate_json(carried.model_dump_json())
    assert again == carried


async def test_a_poisoned_command_fails_alone_and_the_writer_goes_on(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
) -> None:
    settings = make_settings(billing_command_retry_after=timedelta(milliseconds=200), billing_command_attempts=2)
    family = await make_family(sessions)
    # A command no handler knows (as a bug would leave in the carried state) raises outside any activity.
    poisoned = FamilyBillingState(pending=[Command(kind="no_such_command", payload={"x": 1})])
    handle = await temporal_client.start_workflow(
        FAMILY_BILLING_WORKFLOW,
        FamilyBillingInput(parent_id=family.parent_id, state=poisoned),
        id=billing_workflow_id(family.parent_id),
        task_queue=settings.task_queue,
    )
    async with billing_worker(build_deps(settings, sessions, temporal_client)):

        async def flagged() -> str | None:
            return (await handle.describe()).typed_search_attributes.get(BILLING_ATTENTION)

        await eventually(flagged, until=lambda v: v == "failed-commands", what="attention")
        method = await card(stripe_client)
        enrollment_id = await make_enrollment(sessions, family, family.student_ids[0], method)
        outcome = await handle.execute_update(
            UPDATE_START_STUDENT,
            started_message(family, enrollment_id, family.student_ids[0], method),
            result_type=StartOutcome,
        )
    assert outcome.status == "started"
    history = await handle.fetch_history()
    task_failures = [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]
    assert task_failures == []


async def test_a_failed_command_that_works_on_a_retry_leaves_nothing_behind(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
) -> None:
    settings = make_settings(billing_command_retry_after=timedelta(seconds=1), billing_command_attempts=10)
    async with billing_worker(build_deps(settings, sessions, temporal_client)):
        family = await make_family(sessions)
        method = await card(stripe_client)
        enrollment_id = await make_enrollment(sessions, family, family.student_ids[0], method, minutes=35)
        handle = await start_student(
            temporal_client,
            settings,
            started_message(family, enrollment_id, family.student_ids[0], method, lesson_minutes=35),
        )

        async def retry_waits() -> bool:  # the first try was refused: its retry's timer runs
            history = await handle.fetch_history()
            return any(e.HasField("timer_started_event_attributes") for e in history.events)

        await eventually(retry_waits, what="the first try refused")
        async with transaction(sessions) as session:  # the office adds the missing rate
            session.add(LessonRate(instrument="piano", minutes=35, weekly_price_minor=4000, monthly_price_minor=16000))
        mine = col(Subscription.enrollment_id) == enrollment_id
        await eventually(lambda: count(sessions, Subscription, mine), timeout=30, what="the retried start")
        again = await handle.execute_update(
            UPDATE_START_STUDENT,
            started_message(family, enrollment_id, family.student_ids[0], method, lesson_minutes=35),
            result_type=StartOutcome,
        )
        attention = (await handle.describe()).typed_search_attributes.get(BILLING_ATTENTION)
    assert again.status == "started"
    assert attention == "ok"
    assert await count(sessions, Subscription, mine) == 1


async def test_a_poisoned_stripe_event_is_flagged_and_the_familys_card_still_changes(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
) -> None:
    settings = make_settings(billing_command_retry_after=timedelta(milliseconds=200), billing_command_attempts=2)
    async with billing_worker(build_deps(settings, sessions, temporal_client)):
        billed = await billed_family(sessions, settings, temporal_client, stripe_client)
        # An event about an invoice Stripe does not know: Stripe refuses the read (a 404), at every try.
        poisoned = StripeEventReceived(
            stripe_event_id="evt_poisoned", type="invoice.payment_failed", invoice_id="in_nosuchinvoice"
        )
        await billed.handle.signal(SIGNAL_STRIPE_EVENT, poisoned)

        async def flagged() -> str | None:
            return (await billed.handle.describe()).typed_search_attributes.get(BILLING_ATTENTION)

        await eventually(flagged, until=lambda v: v == "failed-commands", what="attention")
        changed = await billed.handle.execute_update(
            UPDATE_CHANGE_CARD, CardChange(stripe_payment_method_id=await card(stripe_client)), result_type=CardResult
        )
    assert changed.attached
    history = await billed.handle.fetch_history()
    assert [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")] == []
