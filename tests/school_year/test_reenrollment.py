"""A family through the end of a semester: re-enrollment opened by the office (or the daily schedule), one child
returning and one not, the default for the unanswered, the office's questions, emails once each, billing told.

The ending semester "happens" by moving its lessons into the past in the database, so nobody waits for weeks.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import Replayer

from core.contracts.billing import SIGNAL_LESSONS_BOOKED
from core.contracts.reenrollment import (
    REENROLLMENT_OPENING_WORKFLOW,
    OpenedReenrollments,
    OpenReenrollment,
    ReenrollmentStatus,
    reenrollment_workflow_id,
)
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.temporal import REENROLLMENT_STATE, billing_workflow_id, enrollment_workflow_id
from devstack.smtp_sink import SmtpSink
from domain.reenrollment import SemesterDates, next_semester
from models import Communication, Lesson, LessonKind, Parent, Role, Semester, Student
from tests.enrollment.helpers import (
    application,
    billing_events,
    enroll,
    enrollment_row,
    enrollment_status,
    lessons_of,
    teacher_by_email,
    wait_for_state,
)
from tests.school_year.conftest import SchoolYearWorker
from tests.waiting import eventually
from workers.main import workflow_runner
from workflows.enrollment import EnrollmentWorkflow
from workflows.reenrollment import ReenrollmentWorkflow

MAYA = "maya.lindqvist@cedarheights.example"  # the demo school's piano teacher
AuthHeaders = Any


async def _activate(api: httpx.AsyncClient, enrollment_id: str, admin: dict[str, str]) -> None:
    await wait_for_state(api, enrollment_id, "demo_scheduled", "awaiting_outcome")
    answer = await api.post(
        f"/api/v1/enrollments/{enrollment_id}/demo-outcome", json={"outcome": "continue"}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    # Became active: one whose lessons are all over may already have completed after a short grace.
    await eventually(
        lambda: enrollment_status(api, enrollment_id),
        until=lambda body: any(step["state"] == "active" for step in body["steps"]),
        what="the enrollment to become active",
    )


async def _family(
    api: httpx.AsyncClient, sessions: SessionFactory, auth_headers: AuthHeaders, children: int
) -> tuple[list[str], Parent, dict[str, str]]:
    """A family whose ``children`` piano students are active; the second joins as the signed-in parent's act."""
    admin = await auth_headers(Role.admin)
    body = application()
    ids = [await enroll(api, body)]
    await _activate(api, ids[0], admin)
    row = await enrollment_row(sessions, ids[0])
    async with sessions() as session:
        parent = await session.get(Parent, row.parent_id)
    assert parent is not None
    assert parent.user_id is not None
    parent_headers = await auth_headers(Role.parent, user_id=parent.user_id)
    for index in range(1, children):
        sibling = application(
            parent=body["parent"],
            student={"first_name": f"Ben{index}", "last_name": "Okafor", "date_of_birth": "2017-06-01"},
        )
        response = await api.post("/api/v1/enrollments", json=sibling, headers=parent_headers)
        assert response.status_code == 202, response.text
        ids.append(str(response.json()["enrollment_id"]))
        await _activate(api, ids[-1], admin)
    return ids, parent, parent_headers


async def _semester_happened(sessions: SessionFactory, settings: Settings, ids: list[str]) -> tuple[Semester, Semester]:
    """Moves the enrollments' weekly lessons back by whole weeks until all are over, and held, before any lesson
    still in place (the demos of the last week included: the teacher's lessons may not overlap); the semester they
    were in is the ending one (it starts early enough to hold them). Returns it and the next one."""
    enrollments = [uuid.UUID(i) for i in ids]
    regular = (col(Lesson.enrollment_id).in_(enrollments), col(Lesson.kind) == LessonKind.regular)
    now = datetime.now(UTC)
    async with transaction(sessions) as session:
        first, last = (
            await session.execute(
                select(func.min(col(Lesson.starts_at)), func.max(col(Lesson.ends_at))).where(*regular)
            )
        ).one()
        assert first is not None, "weekly lessons were booked"
        assert last is not None
        semesters = list(await session.scalars(select(Semester)))
        day = first.astimezone(settings.timezone).date()
        ending = next(s for s in semesters if s.start_date <= day <= s.end_date)
        clear_of = min(first, now - timedelta(days=8))
        shift = timedelta(weeks=(last - clear_of).days // 7 + 1)
        await session.execute(
            update(Lesson)
            .where(*regular)
            .values(starts_at=col(Lesson.starts_at) - shift, ends_at=col(Lesson.ends_at) - shift, status="completed")
        )
        moved_first = (first - shift).astimezone(settings.timezone).date()
        ending.start_date = min(ending.start_date, moved_first)
        dates = [SemesterDates(s.id, s.start_date, s.end_date) for s in semesters]
        following = next_semester(dates, SemesterDates(ending.id, ending.start_date, ending.end_date))
        assert following is not None
        following_row = next(s for s in semesters if s.id == following.id)
    return ending, following_row


async def _offers(api: httpx.AsyncClient, reenrollment_id: str, headers: dict[str, str], count: int) -> dict:
    async def fetch() -> dict:
        response = await api.get(f"/api/v1/reenrollments/{reenrollment_id}", headers=headers)
        return response.json() if response.status_code == 200 else {"offers": []}

    return await eventually(fetch, until=lambda body: len(body["offers"]) == count, what=f"{count} offer(s)")


async def _signals(client: Client, workflow_id: str, name: str) -> int:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(
        1
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and event.workflow_execution_signaled_event_attributes.signal_name == name
    )


async def _sent(sessions: SessionFactory, prefix: str) -> dict[str, str]:
    async with sessions() as session:
        rows = await session.scalars(select(Communication).where(col(Communication.dedup_key).startswith(prefix)))
        return {row.dedup_key.removeprefix(prefix): row.status for row in rows}


def _delivered(smtp_sink: SmtpSink, prefix: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for message in smtp_sink.messages():
        key = message["headers"].get("X-Cedar-Dedup-Key", "").strip()
        if key.startswith(prefix):
            counts[key.removeprefix(prefix)] = counts.get(key.removeprefix(prefix), 0) + 1
    return counts


async def _replays(client: Client, workflow: type, workflow_id: str) -> None:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    replayer = Replayer(workflows=[workflow], workflow_runner=workflow_runner(), data_converter=client.data_converter)
    replayed = await replayer.replay_workflow(history, raise_on_replay_failure=False)
    assert replayed.replay_failure is None


async def test_one_child_returns_and_one_ends_after_the_office_opens_reenrollment(
    api: httpx.AsyncClient,
    demo_data: None,
    school_year_worker: SchoolYearWorker,
    sessions: SessionFactory,
    settings: Settings,
    smtp_sink: SmtpSink,
    auth_headers: AuthHeaders,
    temporal_client: Client,
) -> None:
    admin = await auth_headers(Role.admin)
    async with school_year_worker():
        (staying, leaving), parent, parent_headers = await _family(api, sessions, auth_headers, 2)
        maya = await teacher_by_email(sessions, MAYA)
        assert maya.active_students == 2
        fall, spring = await _semester_happened(sessions, settings, [staying, leaving])
        leaving_last = max(lesson.ends_at for lesson in await lessons_of(sessions, leaving, "completed"))

        deadline = datetime.now(UTC) + timedelta(seconds=8)
        opened = await api.post(
            f"/api/v1/semesters/{fall.id}/reenrollment",
            json={"deadline": deadline.isoformat(), "default": "return"},
            headers=admin,
        )
        assert opened.status_code == 202, opened.text
        reenrollment_id = reenrollment_workflow_id(parent.id, fall.id)
        assert opened.json()["families"] == 1
        assert opened.json()["reenrollment_ids"] == [reenrollment_id]
        assert opened.json()["next_semester_id"] == str(spring.id)
        again = await api.post(f"/api/v1/semesters/{fall.id}/reenrollment", headers=admin)
        assert again.status_code == 202  # the family's re-enrollment is running already: left as it is

        view = await _offers(api, reenrollment_id, parent_headers, 2)
        assert view["open"] is True
        assert {o["answer"] for o in view["offers"]} == {"not_answered"}
        stranger = await auth_headers(Role.parent)
        assert (await api.get(f"/api/v1/reenrollments/{reenrollment_id}", headers=stranger)).status_code == 404
        by_enrollment = {o["enrollment_id"]: o for o in view["offers"]}
        for offer in view["offers"]:
            assert offer["same_as_now"] is True
            assert offer["teacher_display_name"] == "Maya L."

        answers_url = f"/api/v1/reenrollments/{reenrollment_id}/answers"
        for enrollment_id, returning in ((staying, True), (leaving, True), (leaving, False)):  # a changed answer
            answered = await api.post(
                answers_url,
                json={"answers": [{"enrollment_id": enrollment_id, "returning": returning}]},
                headers=parent_headers,
            )
            assert answered.status_code == 200, answered.text
        unknown = await api.post(
            answers_url,
            json={"answers": [{"enrollment_id": str(uuid.uuid4()), "returning": True}]},
            headers=parent_headers,
        )
        assert unknown.status_code == 409
        listed = await api.get(f"/api/v1/semesters/{fall.id}/reenrollment", headers=admin)
        assert {o["enrollment_id"]: o["answer"] for o in listed.json()} == {
            staying: "returning",
            leaving: "not_returning",
        }
        coming_back = await api.get(f"/api/v1/semesters/{fall.id}/reenrollment?answer=returning", headers=admin)
        assert [o["enrollment_id"] for o in coming_back.json()] == [staying]
        assert {o["answered_by"] for o in listed.json()} == {"family"}

        handle = temporal_client.get_workflow_handle(reenrollment_id, result_type=ReenrollmentStatus)

        async def listed_as() -> str | None:
            return (await handle.describe()).typed_search_attributes.get(REENROLLMENT_STATE)

        await eventually(listed_as, until=lambda state: state in ("answered", "closed"), what="listed as answered")
        result = await handle.result(rpc_timeout=timedelta(seconds=60))
        assert result.state == "closed"
        assert {str(o.offer.enrollment_id): o.outcome for o in result.offers} == {
            staying: "booked",
            leaving: "finished",
        }
        late = await api.post(
            answers_url, json={"answers": [{"enrollment_id": staying, "returning": False}]}, headers=parent_headers
        )
        assert late.status_code == 409
        assert (await handle.describe()).typed_search_attributes.get(REENROLLMENT_STATE) == "closed"

        # The one leaving: completed after its last lesson, its place given back, billing stopped at that lesson.
        completed = await eventually(
            lambda: enrollment_row(sessions, leaving), until=lambda row: row.state == "completed", what="completed"
        )
        assert completed.completed_at is not None
        assert (await teacher_by_email(sessions, MAYA)).active_students == 1
        now = datetime.now(UTC)
        assert not [lesson for lesson in await lessons_of(sessions, leaving, "scheduled") if lesson.starts_at > now]
        async with sessions() as session:
            student = await session.get(Student, completed.student_id)
        assert student is not None
        assert not student.is_active

        # The one staying: next semester's lessons on the same enrollment, at the offered weekday and time.
        offered = by_enrollment[staying]
        spring_lessons = await lessons_of(sessions, staying, "scheduled")
        assert spring_lessons
        for lesson in spring_lessons:
            local = lesson.starts_at.astimezone(settings.timezone)
            assert spring.start_date <= local.date() <= spring.end_date
            assert (local.weekday(), local.time().isoformat()) == (offered["weekday"], offered["local_time"])
        assert (await enrollment_row(sessions, staying)).state == "active"

        events = await billing_events(temporal_client, parent.id, 4)
        assert f"booked:{staying}:{spring_lessons[-1].ends_at.isoformat()}" in events
        assert f"stopped:{leaving}:{leaving_last.isoformat()}" in events
        assert await _signals(temporal_client, billing_workflow_id(parent.id), SIGNAL_LESSONS_BOOKED) == 1

        family_prefix = f"reenrollment:{parent.id}:{fall.id}:"
        end_prefix = f"enrollment:{leaving}:completed-"
        await eventually(
            lambda: _sent(sessions, end_prefix), until=lambda s: s == {"teacher": "sent", "parent": "sent"}, what="end"
        )
        assert await _sent(sessions, family_prefix) == {"offer": "sent", "summary": "sent"}
        assert _delivered(smtp_sink, family_prefix) == {"offer": 1, "summary": 1}
        assert _delivered(smtp_sink, end_prefix) == {"teacher": 1, "parent": 1}
        assert await _sent(sessions, f"enrollment:{staying}:completed-") == {}

        # The office's questions: who answered what, and next semester's schedule of each teacher.
        office = await api.get(f"/api/v1/semesters/{fall.id}/reenrollment?answer=not_returning", headers=admin)
        assert [(o["enrollment_id"], o["outcome"]) for o in office.json()] == [(leaving, "finished")]
        schedule = await api.get(f"/api/v1/semesters/{spring.id}/schedule?teacher_id={maya.id}", headers=admin)
        assert schedule.status_code == 200, schedule.text
        [row] = schedule.json()
        assert (row["weekday"], row["local_time"], row["lesson_minutes"]) == (
            offered["weekday"],
            offered["local_time"],
            30,
        )
        assert row["lessons"] == len(spring_lessons)
        maya_headers = await auth_headers(Role.teacher, user_id=maya.user_id)
        own = await api.get(f"/api/v1/semesters/{spring.id}/schedule", headers=maya_headers)
        assert own.json() == schedule.json()
        other = await api.get(f"/api/v1/semesters/{spring.id}/schedule?teacher_id={uuid.uuid4()}", headers=maya_headers)
        assert other.status_code == 404

        # Both new paths replay as they ran (a worker restart or a redeploy).
        for enrollment_id in (staying, leaving):
            await _replays(temporal_client, EnrollmentWorkflow, enrollment_workflow_id(enrollment_id))
        await _replays(temporal_client, ReenrollmentWorkflow, reenrollment_id)


@pytest.mark.school_year_settings(
    reenrollment_lead_time=timedelta(days=400),
    reenrollment_answer_time=timedelta(seconds=6),
    reenrollment_reminder_before=timedelta(seconds=3),
)
async def test_the_daily_opening_offers_the_next_semester_and_the_default_rolls_an_unanswered_family_over(
    api: httpx.AsyncClient,
    demo_data: None,
    school_year_worker: SchoolYearWorker,
    sessions: SessionFactory,
    settings: Settings,
    smtp_sink: SmtpSink,
    auth_headers: AuthHeaders,
    temporal_client: Client,
) -> None:
    async with school_year_worker():
        [only], parent, _ = await _family(api, sessions, auth_headers, 1)
        fall, spring = await _semester_happened(sessions, settings, [only])
        opened = await temporal_client.execute_workflow(
            REENROLLMENT_OPENING_WORKFLOW,
            OpenReenrollment(),
            id=f"opening-{uuid.uuid4()}",
            task_queue=settings.task_queue,
            result_type=OpenedReenrollments,
        )
        assert opened.families >= 1
        handle = temporal_client.get_workflow_handle(
            reenrollment_workflow_id(parent.id, fall.id), result_type=ReenrollmentStatus
        )
        result = await handle.result(rpc_timeout=timedelta(seconds=60))
        [offer] = result.offers
        assert (offer.returning, offer.answered_by, offer.outcome) == (True, "default", "booked")
        assert await lessons_of(sessions, only, "scheduled")
        assert (await enrollment_row(sessions, only)).state == "active"
        assert await _signals(temporal_client, billing_workflow_id(parent.id), SIGNAL_LESSONS_BOOKED) == 1
        admin = await auth_headers(Role.admin)
        listed = await api.get(f"/api/v1/semesters/{fall.id}/reenrollment", headers=admin)
        assert [(o["answer"], o["answered_by"]) for o in listed.json()] == [("returning", "default")]
        assert spring.id != fall.id
        # Unanswered three seconds before the deadline: reminded once.
        assert await _sent(sessions, f"reenrollment:{parent.id}:{fall.id}:") == {
            "offer": "sent",
            "reminder": "sent",
            "summary": "sent",
        }
