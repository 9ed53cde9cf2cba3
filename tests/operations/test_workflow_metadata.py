"""Temporal's user metadata: workflows started by the API (and the schedules) carry a summary in the office's
words, running ones their current details; neither holds personal data. The money workflows started by other
workflows' activities (a family's billing by an enrollment or a Stripe event, its dunning by billing) say so too."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime

import httpx
from temporalio.api.sdk.v1 import WorkflowMetadata
from temporalio.client import Client
from temporalio.service import RPCError
from temporalio.testing import ActivityEnvironment
from temporalio.worker import Worker

from activities.billing import BillingActivities
from activities.enrollment import BillingHandoffActivities
from activities.stripe_inbox import hand_over
from api.main import create_app
from core.contracts.billing import (
    BILLING_SUMMARY_FROM_ENROLLMENT,
    BILLING_SUMMARY_FROM_STRIPE,
    NotifyDunning,
    StripeEventReceived,
    StudentStopped,
)
from core.contracts.dunning import DUNNING_SUMMARY, SIGNAL_INVOICE_FAILED, InvoiceFailed
from core.db import SessionFactory
from core.settings import Settings
from core.temporal import billing_workflow_id, connect_temporal, dunning_workflow_id, enrollment_workflow_id
from domain.enrollment_rules import EnrollmentState
from tests.billing.conftest import make_family, started_message
from tests.billing.dunning_stand_in import DunningStandIn
from tests.enrollment.helpers import application, wait_for_state
from tests.worker_exit import running
from workers.main import build_deps
from workers.registry import activity_functions
from workers.schedules import build_schedule, scheduled_jobs
from workflows.billing import FamilyBillingWorkflow
from workflows.enrollment import current_details


async def test_an_enrollment_reads_in_the_offices_words_without_personal_data(
    make_settings: Callable[..., Settings], demo_data: None, sessions: SessionFactory
) -> None:
    settings = make_settings(api_worker=True, enrollment_task_queue="")
    body = application()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as api:
            response = await api.post("/api/v1/enrollments", json=body)
            assert response.status_code == 202, response.text
            enrollment_id = str(response.json()["enrollment_id"])
            status = await wait_for_state(api, enrollment_id, "demo_scheduled")
        client = await app.state.context.temporal.get()
        handle = client.get_workflow_handle(enrollment_workflow_id(enrollment_id))
        description = await handle.describe()
        summary = await description.static_summary()
        metadata = await handle.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)
    assert summary == "Enrollment: piano 30 min, billed by month"
    demo_at = datetime.fromisoformat(status["demo_lesson_at"]).astimezone(UTC)
    assert metadata.current_details == (
        f"demo_scheduled: demo {demo_at:%Y-%m-%d %H:%M} UTC, waiting for the demo's outcome"
    )
    for personal in (body["parent"]["email"], body["parent"]["last_name"], body["student"]["first_name"]):
        assert personal not in summary
        assert personal not in metadata.current_details


async def test_money_workflows_started_by_activities_carry_a_summary_without_personal_data(
    settings: Settings, sessions: SessionFactory, temporal_client: Client
) -> None:
    handoff = BillingHandoffActivities(settings, temporal_client)
    started: list[str] = []
    try:
        # The enrollment's hand-off, update-with-start: billing's validator refuses the start, the workflow runs.
        by_update = await make_family(sessions)
        worker = Worker(
            temporal_client,
            task_queue=settings.task_queue,
            workflows=[FamilyBillingWorkflow, DunningStandIn],
            activities=activity_functions(build_deps(settings, sessions, temporal_client)),
        )
        async with running(worker):
            message = started_message(
                by_update, uuid.uuid4(), by_update.student_ids[0], "pm_x", lesson_minutes=0, await_outcome=True
            )
            started.append(billing_workflow_id(by_update.parent_id))
            outcome = await ActivityEnvironment().run(handoff.start_billing, message)
        assert outcome is not None
        assert outcome.status == "failed"
        # The enrollment's hand-off, signal-with-start (a stop, or an older enrollment's start).
        by_signal = uuid.uuid4()
        started.append(billing_workflow_id(by_signal))
        await handoff.stop_billing(
            StudentStopped(enrollment_id=uuid.uuid4(), parent_id=by_signal, student_id=uuid.uuid4())
        )
        # The webhook's (and the catch-up's) hand-over of a Stripe event.
        by_stripe = uuid.uuid4()
        started.append(billing_workflow_id(by_stripe))
        await hand_over(
            temporal_client, settings, by_stripe, StripeEventReceived(stripe_event_id="evt_1", type="invoice.paid")
        )
        # Billing tells dunning that a payment failed, which starts the family's dunning.
        owing = uuid.uuid4()
        failed = InvoiceFailed(
            parent_id=owing,
            invoice_id=uuid.uuid4(),
            stripe_invoice_id="in_1",
            amount_due_minor=12000,
            failed_at=datetime.now(UTC),
            attempt=1,
        )
        started.append(dunning_workflow_id(owing))
        await BillingActivities(settings, sessions, temporal_client).notify_dunning(
            NotifyDunning(parent_id=owing, signal=SIGNAL_INVOICE_FAILED, payload=failed.model_dump(mode="json"))
        )
        summaries = [
            await (await temporal_client.get_workflow_handle(workflow_id).describe()).static_summary()
            for workflow_id in started
        ]
    finally:
        for workflow_id in started:
            with suppress(RPCError):  # one the test did not get to start
                await temporal_client.get_workflow_handle(workflow_id).terminate("test over")
    assert summaries == [
        BILLING_SUMMARY_FROM_ENROLLMENT,
        BILLING_SUMMARY_FROM_ENROLLMENT,
        BILLING_SUMMARY_FROM_STRIPE,
        DUNNING_SUMMARY,
    ]
    assert summaries[0] == "Billing of a family, started by an enrollment"
    assert DUNNING_SUMMARY == "Dunning of a family, started by a failed payment"


def test_a_closed_enrollment_says_so() -> None:
    assert current_details(EnrollmentState.WITHDRAWN, None) == "withdrawn: closed"
    assert current_details(EnrollmentState.ACTIVE, None) == "active: weekly lessons running"


def test_every_schedule_names_its_job(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    for job in scheduled_jobs(settings):
        action = build_schedule(settings, job).action
        assert getattr(action, "static_summary", None) == f"Scheduled {job.name} ({job.cron})"


async def test_the_summary_is_sealed_like_every_payload(settings: Settings) -> None:
    # User metadata goes through the data converter: the server (and a UI without the codec) sees ciphertext.
    client = await connect_temporal(settings)
    encoded = await client.data_converter.encode(["Enrollment: piano 30 min"])
    assert b"piano" not in encoded[0].data
