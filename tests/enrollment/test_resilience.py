"""Outages and restarts: SMTP down for a while, a worker stopped mid-workflow. Each email once, nothing twice."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select
from sqlmodel import col

from core.db import SessionFactory
from devstack.smtp_sink import SmtpSink
from models import Lesson, Role
from tests.enrollment.conftest import EnrollmentWorker
from tests.enrollment.helpers import (
    Rows,
    billing_events,
    communications,
    enroll,
    enrollment_row,
    mail_of,
    sent_communications,
    teacher_by_email,
    wait_for_state,
)
from tests.waiting import eventually

MAYA = "maya.lindqvist@cedarheights.example"


async def wait_for_failed_attempt(sessions: SessionFactory, enrollment_id: str, key: str, timeout: float = 15) -> None:
    def failed_once(rows: Rows) -> bool:
        row = rows.get(key)
        return row is not None and row.status == "failed" and row.attempts >= 1

    await eventually(
        lambda: communications(sessions, enrollment_id),
        until=failed_once,
        timeout=timeout,
        what=f"a failed attempt of {key} recorded",
    )


async def test_smtp_down_for_a_while_then_up_sends_each_email_exactly_once(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
) -> None:
    smtp_sink.stop()
    try:
        async with enrollment_worker():
            enrollment_id = await enroll(api)
            await wait_for_state(api, enrollment_id, "demo_scheduled")
            await wait_for_failed_attempt(sessions, enrollment_id, "welcome-parent")
            await wait_for_failed_attempt(sessions, enrollment_id, "welcome-teacher")
            smtp_sink.start()
            mail = await mail_of(smtp_sink, enrollment_id, {"welcome-parent", "welcome-teacher"}, timeout=30)
            rows = await sent_communications(sessions, enrollment_id, {"welcome-parent", "welcome-teacher"})
    finally:
        if not smtp_sink.is_running():
            smtp_sink.start()
    assert {key: len(messages) for key, messages in mail.items()} == {"welcome-parent": 1, "welcome-teacher": 1}
    for key in ("welcome-parent", "welcome-teacher"):
        assert rows[key].status == "sent"
        assert rows[key].attempts >= 2
        assert rows[key].error is None


async def test_a_worker_stopped_mid_workflow_and_a_new_one_finish_it_without_duplicates(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
    auth_headers,
    temporal_client,
) -> None:
    smtp_sink.stop()
    try:
        async with enrollment_worker():
            enrollment_id = await enroll(api)
            await wait_for_state(api, enrollment_id, "demo_scheduled")
            await wait_for_failed_attempt(sessions, enrollment_id, "welcome-parent")
        # The worker is gone while the welcome emails are being retried and the workflow waits for the outcome.
        smtp_sink.start()
        maya = await teacher_by_email(sessions, MAYA)
        async with enrollment_worker():
            answer = await api.post(
                f"/api/v1/enrollments/{enrollment_id}/demo-outcome",
                json={"outcome": "continue"},
                headers=await auth_headers(Role.teacher, user_id=maya.user_id),
            )
            assert answer.status_code == 200, answer.text
            await wait_for_state(api, enrollment_id, "active")
            mail = await mail_of(smtp_sink, enrollment_id, {"welcome-parent", "welcome-teacher", "active"})
            row = await enrollment_row(sessions, enrollment_id)
            assert row.parent_id is not None
            events = await billing_events(temporal_client, row.parent_id, 1)
    finally:
        if not smtp_sink.is_running():
            smtp_sink.start()
    assert {key: len(messages) for key, messages in mail.items()} == {
        "welcome-parent": 1,
        "welcome-teacher": 1,
        "active": 1,
    }
    assert len(events) == 1
    assert (await teacher_by_email(sessions, MAYA)).active_students == 1
    async with sessions() as session:
        lessons, distinct = (
            await session.execute(
                select(func.count(), func.count(func.distinct(col(Lesson.starts_at)))).where(
                    col(Lesson.enrollment_id) == row.id
                )
            )
        ).one()
    assert lessons == distinct
    assert lessons > 1
    assert [s["state"] for s in row.steps].count("demo_scheduled") == 1
