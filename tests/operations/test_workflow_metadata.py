"""Temporal's user metadata: workflows started by the API (and the schedules) carry a summary in the office's
words, running ones their current details; neither holds personal data."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from temporalio.api.sdk.v1 import WorkflowMetadata

from api.main import create_app
from core.db import SessionFactory
from core.settings import Settings
from core.temporal import connect_temporal, enrollment_workflow_id
from domain.enrollment_rules import EnrollmentState
from tests.enrollment.helpers import application, wait_for_state
from workers.schedules import build_schedule, scheduled_jobs
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
