"""An active enrollment's semester end without the family's answer: the grace timer completes it, a finish waits
for a last lesson still to come, and a cancellation tells billing when the lessons stopped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col
from temporalio.client import Client, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.worker import Replayer

from core.contracts.billing import SIGNAL_LESSONS_BOOKED
from core.contracts.enrollment import UPDATE_CONTINUE_NEXT_SEMESTER, UPDATE_FINISH, Accepted, FinishRequest
from core.contracts.reenrollment import ReenrollmentStatus, reenrollment_workflow_id
from core.db import SessionFactory
from core.settings import Settings
from core.temporal import billing_workflow_id, data_converter, enrollment_workflow_id
from models import Role, Semester
from tests.enrollment.helpers import billing_events, enrollment_row, lessons_of, teacher_by_email
from tests.school_year.conftest import SchoolYearWorker
from tests.school_year.test_reenrollment import (
    MAYA,
    AuthHeaders,
    _family,
    _offers,
    _replays,
    _semester_happened,
    _sent,
    _signals,
)
from tests.waiting import eventually
from workers.main import workflow_runner
from workflows.enrollment import EnrollmentWorkflow

HISTORIES = Path(__file__).resolve().parent / "histories"


@pytest.mark.school_year_settings(semester_end_grace=-timedelta(days=400))
async def test_an_enrollment_nobody_decided_on_completes_after_the_grace(
    api: httpx.AsyncClient,
    demo_data: None,
    school_year_worker: SchoolYearWorker,
    sessions: SessionFactory,
    auth_headers: AuthHeaders,
    temporal_client: Client,
) -> None:
    async with school_year_worker():
        [only], parent, _ = await _family(api, sessions, auth_headers, 1)
        row = await eventually(
            lambda: enrollment_row(sessions, only), until=lambda r: r.state == "completed", what="completed"
        )
        assert row.completed_at is not None
        assert row.teacher_id is None
        assert (await teacher_by_email(sessions, MAYA)).active_students == 0
        now = datetime.now(UTC)
        assert not [lesson for lesson in await lessons_of(sessions, only, "scheduled") if lesson.starts_at > now]
        events = await billing_events(temporal_client, parent.id, 2)
        assert events[0] == f"started:{only}"
        assert events[1].startswith(f"stopped:{only}:")
        assert not events[1].endswith(":-")
        await eventually(
            lambda: _sent(sessions, f"enrollment:{only}:completed-"),
            until=lambda sent: sent == {"teacher": "sent", "parent": "sent"},
            what="the semester end emails",
        )
        await _replays(temporal_client, EnrollmentWorkflow, enrollment_workflow_id(only))


async def test_a_family_not_returning_keeps_its_lessons_until_the_last_one(
    api: httpx.AsyncClient,
    demo_data: None,
    school_year_worker: SchoolYearWorker,
    sessions: SessionFactory,
    settings: Settings,
    auth_headers: AuthHeaders,
    temporal_client: Client,
) -> None:
    """Re-enrollment opened before the semester's lessons are over: "end" by default finishes the enrollment, which
    stays active with its lessons until the last one; a second decision is refused."""
    admin = await auth_headers(Role.admin)
    async with school_year_worker():
        [only], parent, _ = await _family(api, sessions, auth_headers, 1)
        async with sessions() as session:
            semesters = list(await session.scalars(select(Semester).order_by(col(Semester.start_date))))
        first_lesson = (await lessons_of(sessions, only, "scheduled"))[0]
        day = first_lesson.starts_at.astimezone(settings.timezone).date()
        fall = next(s for s in semesters if s.start_date <= day <= s.end_date)
        deadline = datetime.now(UTC) + timedelta(seconds=3)
        opened = await api.post(
            f"/api/v1/semesters/{fall.id}/reenrollment",
            json={"deadline": deadline.isoformat(), "default": "end"},
            headers=admin,
        )
        assert opened.status_code == 202, opened.text
        handle = temporal_client.get_workflow_handle(
            reenrollment_workflow_id(parent.id, fall.id), result_type=ReenrollmentStatus
        )
        result = await handle.result(rpc_timeout=timedelta(seconds=60))
        [offer] = result.offers
        assert (offer.returning, offer.answered_by, offer.outcome) == (False, "default", "finished")

        enrollment = temporal_client.get_workflow_handle(enrollment_workflow_id(only))
        for update in (UPDATE_FINISH, UPDATE_CONTINUE_NEXT_SEMESTER):
            message = FinishRequest() if update == UPDATE_FINISH else {"lessons_end": deadline.isoformat()}
            with pytest.raises(WorkflowUpdateFailedError) as refused:
                await enrollment.execute_update(update, message, result_type=Accepted)
            assert "already finishing" in str(getattr(refused.value.cause, "message", ""))
        assert (await enrollment_row(sessions, only)).state == "active"
        assert await lessons_of(sessions, only, "scheduled")
        assert (await teacher_by_email(sessions, MAYA)).active_students == 1


async def test_cancelling_an_active_enrollment_tells_billing_when_the_lessons_stopped(
    api: httpx.AsyncClient,
    demo_data: None,
    school_year_worker: SchoolYearWorker,
    sessions: SessionFactory,
    auth_headers: AuthHeaders,
    temporal_client: Client,
) -> None:
    async with school_year_worker():
        [only], parent, parent_headers = await _family(api, sessions, auth_headers, 1)
        before = datetime.now(UTC)
        cancelled = await api.post(
            f"/api/v1/enrollments/{only}/cancel", json={"reason": "moving away"}, headers=parent_headers
        )
        assert cancelled.status_code == 200, cancelled.text
        events = await billing_events(temporal_client, parent.id, 2)
        stopped_at = datetime.fromisoformat(events[1].removeprefix(f"stopped:{only}:"))
        assert before - timedelta(seconds=1) <= stopped_at <= datetime.now(UTC)
        await eventually(
            lambda: enrollment_row(sessions, only), until=lambda r: r.state == "cancelled", what="cancelled"
        )


async def test_a_child_cancelled_before_the_deadline_is_not_booked_for_the_next_semester(
    api: httpx.AsyncClient,
    demo_data: None,
    school_year_worker: SchoolYearWorker,
    sessions: SessionFactory,
    settings: Settings,
    auth_headers: AuthHeaders,
    temporal_client: Client,
) -> None:
    admin = await auth_headers(Role.admin)
    async with school_year_worker():
        [only], parent, parent_headers = await _family(api, sessions, auth_headers, 1)
        fall, spring = await _semester_happened(sessions, settings, [only])
        deadline = datetime.now(UTC) + timedelta(seconds=6)
        opened = await api.post(
            f"/api/v1/semesters/{fall.id}/reenrollment", json={"deadline": deadline.isoformat()}, headers=admin
        )
        assert opened.status_code == 202, opened.text
        reenrollment_id = reenrollment_workflow_id(parent.id, fall.id)
        await _offers(api, reenrollment_id, parent_headers, 1)
        cancelled = await api.post(f"/api/v1/enrollments/{only}/cancel", json={"reason": "moving"}, headers=admin)
        assert cancelled.status_code == 200, cancelled.text
        handle = temporal_client.get_workflow_handle(reenrollment_id, result_type=ReenrollmentStatus)
        result = await handle.result(rpc_timeout=timedelta(seconds=60))
        [offer] = result.offers
        assert (offer.returning, offer.outcome) == (True, "unavailable")
        assert await lessons_of(sessions, only, "scheduled") == []
        assert (await enrollment_row(sessions, only)).state == "cancelled"
        assert await _signals(temporal_client, billing_workflow_id(parent.id), SIGNAL_LESSONS_BOOKED) == 0
        assert spring.id != fall.id


async def test_an_enrollment_whose_workflow_already_ended_is_completed_by_reenrollment(
    api: httpx.AsyncClient,
    demo_data: None,
    school_year_worker: SchoolYearWorker,
    sessions: SessionFactory,
    settings: Settings,
    auth_headers: AuthHeaders,
    temporal_client: Client,
) -> None:
    """Enrollments started before semester ends had their workflow end at the last lesson, leaving the row active
    and the place taken: re-enrollment completes such an enrollment itself when the family is not returning."""
    admin = await auth_headers(Role.admin)
    async with school_year_worker():
        [only], parent, _ = await _family(api, sessions, auth_headers, 1)
        await temporal_client.get_workflow_handle(enrollment_workflow_id(only)).terminate("ended at its last lesson")
        fall, _ = await _semester_happened(sessions, settings, [only])
        deadline = datetime.now(UTC) + timedelta(seconds=4)
        opened = await api.post(
            f"/api/v1/semesters/{fall.id}/reenrollment",
            json={"deadline": deadline.isoformat(), "default": "end"},
            headers=admin,
        )
        assert opened.status_code == 202, opened.text
        handle = temporal_client.get_workflow_handle(
            reenrollment_workflow_id(parent.id, fall.id), result_type=ReenrollmentStatus
        )
        [offer] = (await handle.result(rpc_timeout=timedelta(seconds=60))).offers
        assert offer.outcome == "finished"
        row = await enrollment_row(sessions, only)
        assert row.state == "completed"
        assert row.completed_at is not None
        assert (await teacher_by_email(sessions, MAYA)).active_students == 0
        events = await billing_events(temporal_client, parent.id, 2)
        assert events[1].startswith(f"stopped:{only}:")
        assert await _sent(sessions, f"enrollment:{only}:completed-") == {"teacher": "sent", "parent": "sent"}


async def test_an_enrollment_active_before_semester_ends_replays_on_the_old_path() -> None:
    """Recorded with the workflow as it was before the ``semester-end`` patch (its last lesson set a few seconds
    ahead): active, then over at its last lesson. The new code replays it unchanged, where the unpatched new path
    would complete the enrollment instead."""
    history = WorkflowHistory.from_json(
        "enrollment-before-semester-end", (HISTORIES / "enrollment_active_before_semester_end.json").read_text()
    )
    replayer = Replayer(
        workflows=[EnrollmentWorkflow], workflow_runner=workflow_runner(), data_converter=data_converter(Settings())
    )
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None
