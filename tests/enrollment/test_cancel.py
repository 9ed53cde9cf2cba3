"""Cancelling at each state undoes what was made and tells the family; a closed enrollment refuses with 409."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import col
from temporalio import activity

from activities.enrollment import EnrollmentActivities
from core.contracts.enrollment import AssignTeacher, TeacherAssignment
from core.db import SessionFactory, transaction
from devstack.smtp_sink import SmtpSink
from models import AuditLog, Parent, Role, Teacher
from tests.enrollment.conftest import EnrollmentWorker
from tests.enrollment.helpers import (
    billing_events,
    enroll,
    enrollment_row,
    lessons_of,
    mail_of,
    student_of,
    teacher_by_email,
    wait_for_state,
)
from tests.replay.recorder import open_payloads
from tests.waiting import eventually
from workers.registry import WorkerDeps

MAYA = "maya.lindqvist@cedarheights.example"
IN_THE_PAST = pytest.mark.enrollment_settings(demo_min_notice=-timedelta(days=7))


def held_assignment(deps: WorkerDeps, release: asyncio.Event) -> object:
    """The real teacher assignment, held until ``release``: the workflow sits in ``account_created`` meanwhile."""
    real = EnrollmentActivities(deps.settings, deps.sessions, deps.identity)

    @activity.defn(name="enrollment_assign_teacher")
    async def assign_teacher(request: AssignTeacher) -> TeacherAssignment:
        await release.wait()
        return await real.assign_teacher(request)

    return assign_teacher


async def _cancel(api: httpx.AsyncClient, enrollment_id: str, headers: dict[str, str]) -> httpx.Response:
    return await api.post(
        f"/api/v1/enrollments/{enrollment_id}/cancel", json={"reason": "moving away"}, headers=headers
    )


async def _reach(api: httpx.AsyncClient, enrollment_id: str, state: str, admin: dict[str, str]) -> None:
    if state == "active":
        await wait_for_state(api, enrollment_id, "demo_scheduled", "awaiting_outcome")
        answer = await api.post(
            f"/api/v1/enrollments/{enrollment_id}/demo-outcome", json={"outcome": "continue"}, headers=admin
        )
        assert answer.status_code == 200, answer.text
    await wait_for_state(api, enrollment_id, state)


@pytest.mark.parametrize(
    "state",
    [
        "waitlisted",
        "demo_scheduled",
        pytest.param("awaiting_outcome", marks=IN_THE_PAST),
        "active",
    ],
)
async def test_cancel_in_a_waiting_state_undoes_everything(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
    auth_headers,
    temporal_client,
    state: str,
) -> None:
    if state == "waitlisted":
        async with transaction(sessions) as session:
            await session.execute(update(Teacher).where(col(Teacher.email) == MAYA).values(capacity=0))
    admin = await auth_headers(Role.admin)
    async with enrollment_worker():
        enrollment_id = await enroll(api)
        await _reach(api, enrollment_id, state, admin)
        row = await enrollment_row(sessions, enrollment_id)
        assert row.parent_id is not None
        parent = await auth_headers(Role.parent, user_id=await _parent_user(sessions, row.parent_id))
        cancelled = await _cancel(api, enrollment_id, parent)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == state
        closed = await wait_for_state(api, enrollment_id, "cancelled")
        mail = await mail_of(smtp_sink, enrollment_id, {"closed"})
        events = await billing_events(temporal_client, row.parent_id, 2 if state == "active" else 0, timeout=5)
        again = await _cancel(api, enrollment_id, admin)
        now = datetime.now(UTC)
    # Publicly only who cancelled; the family's own words stay in the audit log.
    assert closed["failure_reason"] == "cancelled by the family"
    assert "cancelled by the family" in mail["closed"][0]["text"]
    async with sessions() as session:
        audited = await session.scalar(
            select(col(AuditLog.after)).where(
                col(AuditLog.action) == "cancel", col(AuditLog.entity_id) == enrollment_id
            )
        )
    assert audited == {"reason": "moving away"}
    # The workflow's history holds the audit row's id, never the typed reason.
    history = await temporal_client.get_workflow_handle(row.workflow_id).fetch_history()
    assert temporal_client.data_converter.payload_codec is not None
    for event in history.events:  # read through the codec, as the Temporal UI shows it to an operator
        await open_payloads(event, temporal_client.data_converter.payload_codec)
    raw = b"".join(event.SerializeToString() for event in history.events)
    async with sessions() as session:
        note_id = await session.scalar(
            select(col(AuditLog.id)).where(col(AuditLog.action) == "cancel", col(AuditLog.entity_id) == enrollment_id)
        )
    assert str(note_id).encode() in raw
    assert b"moving away" not in raw
    assert again.status_code == 409
    assert "already cancelled" in again.json()["detail"]
    assert (await teacher_by_email(sessions, MAYA)).active_students == 0
    # Lessons still ahead are cancelled (a demo already held stays in the record).
    assert [lesson for lesson in await lessons_of(sessions, enrollment_id, "scheduled") if lesson.starts_at > now] == []
    student = await student_of(sessions, enrollment_id)
    assert student is not None
    assert not student.is_active
    assert events == (
        [f"started:{enrollment_id}:{events[0].split(':', 2)[2]}", f"stopped:{enrollment_id}"]
        if state == "active"
        else []
    )


async def _row_reaches(sessions: SessionFactory, enrollment_id: str, state: str, timeout: float = 10) -> None:
    async def row_state() -> str:
        return (await enrollment_row(sessions, enrollment_id)).state

    await eventually(
        row_state, until=lambda now: now == state, timeout=timeout, what=f"the row in {state}", interval=0.05
    )


async def _parent_user(sessions: SessionFactory, parent_id: uuid.UUID) -> uuid.UUID | None:
    async with sessions() as session:
        parent = await session.get(Parent, parent_id)
        assert parent is not None
        return parent.user_id


async def test_cancel_before_any_worker_ran_it(
    api: httpx.AsyncClient, demo_data: None, enrollment_worker: EnrollmentWorker, sessions: SessionFactory, auth_headers
) -> None:
    enrollment_id = await enroll(api)
    admin = await auth_headers(Role.admin)
    pending = asyncio.create_task(_cancel(api, enrollment_id, admin))
    await asyncio.sleep(0.5)  # let the update reach Temporal before a worker runs: nothing shows it has arrived
    async with enrollment_worker():
        cancelled = await pending
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "received"
        await wait_for_state(api, enrollment_id, "cancelled")
    assert (await teacher_by_email(sessions, MAYA)).active_students == 0
    student = await student_of(sessions, enrollment_id)
    assert student is None or not student.is_active


async def test_cancel_while_a_step_runs_takes_effect_after_it_and_undoes_it(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    worker_deps: WorkerDeps,
    sessions: SessionFactory,
    auth_headers,
) -> None:
    release = asyncio.Event()
    admin = await auth_headers(Role.admin)
    async with enrollment_worker(replace=[held_assignment(worker_deps, release)]):
        try:
            enrollment_id = await enroll(api)
            await _row_reaches(sessions, enrollment_id, "account_created")
            # A local activity running longer than a workflow task lets the update in while it runs.
            cancelled = await _cancel(api, enrollment_id, admin)
        finally:
            release.set()  # a failure above must not leave the worker's shutdown waiting on the held step
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["state"] == "account_created"
        closed = await wait_for_state(api, enrollment_id, "cancelled")
    # The held step finished (a place was reserved), then the cancellation undid it.
    assert [s["state"] for s in closed["steps"]][-2:] == ["teacher_assigned", "cancelled"]
    student = await student_of(sessions, enrollment_id)
    assert student is not None
    assert not student.is_active
    assert (await teacher_by_email(sessions, MAYA)).active_students == 0


async def test_cancelling_the_workflow_from_the_temporal_ui_takes_the_same_path(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    temporal_client,
) -> None:
    async with enrollment_worker():
        enrollment_id = await enroll(api)
        await wait_for_state(api, enrollment_id, "demo_scheduled")
        handle = temporal_client.get_workflow_handle(f"enrollment-{enrollment_id}")
        await handle.cancel()
        await _row_reaches(sessions, enrollment_id, "cancelled")
    row = await enrollment_row(sessions, enrollment_id)
    assert row.failure_reason == "cancelled by an operator"
    assert (await teacher_by_email(sessions, MAYA)).active_students == 0
    assert await lessons_of(sessions, enrollment_id, "scheduled") == []
