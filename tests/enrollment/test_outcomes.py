"""After the demo: withdraw, no-show (one more demo, then withdrawn), reminders and the silence timeout."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col
from temporalio.client import Client

from core.db import SessionFactory, transaction
from core.settings import Settings
from devstack.smtp_sink import SmtpSink
from models import Lesson, Role, Teacher, TeacherAvailability
from tests.enrollment.conftest import EnrollmentWorker
from tests.enrollment.helpers import (
    application,
    enroll,
    enrollment_row,
    enrollment_status,
    lessons_of,
    mail_of,
    student_of,
    teacher_by_email,
    wait_for_state,
)
from tests.waiting import eventually
from workers.main import build_deps

MAYA = "maya.lindqvist@cedarheights.example"
ALWAYS = "always.available@cedarheights.example"


async def _outcome(api: httpx.AsyncClient, enrollment_id: str, outcome: str, headers: dict[str, str]) -> None:
    answer = await api.post(
        f"/api/v1/enrollments/{enrollment_id}/demo-outcome", json={"outcome": outcome}, headers=headers
    )
    assert answer.status_code == 200, answer.text


async def test_withdraw_after_the_demo_undoes_the_enrollment(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
    auth_headers,
) -> None:
    admin = await auth_headers(Role.admin)
    async with enrollment_worker():
        enrollment_id = await enroll(api)
        await wait_for_state(api, enrollment_id, "demo_scheduled")
        await _outcome(api, enrollment_id, "withdraw", admin)
        closed = await wait_for_state(api, enrollment_id, "withdrawn")
        await mail_of(smtp_sink, enrollment_id, {"closed"})
        late = await api.post(
            f"/api/v1/enrollments/{enrollment_id}/demo-outcome", json={"outcome": "continue"}, headers=admin
        )
    assert late.status_code == 409
    assert "already withdrawn" in late.json()["detail"]
    assert closed["failure_reason"] == "the family withdrew after the demo lesson"
    assert (await teacher_by_email(sessions, MAYA)).active_students == 0
    assert [lesson.status for lesson in await lessons_of(sessions, enrollment_id)] == ["cancelled"]
    student = await student_of(sessions, enrollment_id)
    assert student is not None
    assert not student.is_active


async def test_a_no_show_books_one_more_demo_and_a_second_one_withdraws(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
    auth_headers,
) -> None:
    maya = await teacher_by_email(sessions, MAYA)
    teacher = await auth_headers(Role.teacher, user_id=maya.user_id)
    async with enrollment_worker():
        enrollment_id = await enroll(api)
        first = await wait_for_state(api, enrollment_id, "demo_scheduled")
        await _outcome(api, enrollment_id, "no_show", teacher)
        second = await _wait_for_new_demo(api, enrollment_id, first["demo_lesson_at"])
        lessons = await lessons_of(sessions, enrollment_id)
        assert [lesson.status for lesson in lessons] == ["no_show", "scheduled"]
        rebooked_key = f"rebooked-{lessons[1].id}"
        mail = await mail_of(smtp_sink, enrollment_id, {rebooked_key, f"{rebooked_key}-teacher"})
        assert second["demo_lesson_local"] in mail[rebooked_key][0]["text"]
        await _outcome(api, enrollment_id, "no_show", teacher)
        closed = await wait_for_state(api, enrollment_id, "withdrawn")
    assert closed["failure_reason"] == "the student missed the rescheduled demo lesson too"
    assert [lesson.status for lesson in await lessons_of(sessions, enrollment_id)] == ["no_show", "no_show"]
    assert (await teacher_by_email(sessions, MAYA)).active_students == 0


async def _wait_for_new_demo(api: httpx.AsyncClient, enrollment_id: str, previous: str) -> dict[str, Any]:
    def rebooked(body: dict[str, Any]) -> bool:
        return body["state"] == "demo_scheduled" and body["demo_lesson_at"] != previous

    return await eventually(lambda: enrollment_status(api, enrollment_id), until=rebooked, what="a second demo booked")


async def _always_available_teacher(sessions: SessionFactory) -> Teacher:
    async with transaction(sessions) as session:
        teacher = Teacher(
            first_name="Al",
            last_name="Ways",
            display_name="Al W.",
            email=ALWAYS,
            instruments=["piano"],
            capacity=5,
        )
        session.add(teacher)
        await session.flush()
        session.add_all(
            TeacherAvailability(teacher_id=teacher.id, weekday=d, start_time=time(0), end_time=time(23, 59))
            for d in range(7)
        )
    return teacher


def _pinned_window(at: datetime, settings: Settings) -> list[dict[str, Any]]:
    """A family free for exactly one 30-minute lesson at ``at``: the demo lands there and nowhere else."""
    local = at.astimezone(settings.timezone)
    end = (datetime.combine(local.date(), local.time()) + timedelta(minutes=30)).time()
    return [{"weekday": local.weekday(), "start": local.strftime("%H:%M"), "end": end.strftime("%H:%M")}]


def _next_hour(after: datetime) -> datetime:
    return after.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)


async def test_silence_after_the_demo_reminds_the_teacher_then_closes_as_withdrawn(
    api: httpx.AsyncClient,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    make_settings,
    settings: Settings,
    smtp_sink: SmtpSink,
    temporal_client: Client,
) -> None:
    await _always_available_teacher(sessions)
    now = datetime.now(UTC)
    demo_start = _next_hour(now - timedelta(days=2))
    since_demo = now - (demo_start + timedelta(minutes=30))
    fast = make_settings(
        demo_min_notice=-timedelta(days=2),
        teacher_outcome_reminder_after=since_demo + timedelta(seconds=1),
        outcome_timeout_after_demo=since_demo + timedelta(seconds=4),
    )
    async with enrollment_worker(deps=build_deps(fast, sessions, temporal_client)):
        enrollment_id = await enroll(api, application(preferred_windows=_pinned_window(demo_start, settings)))
        closed = await wait_for_state(api, enrollment_id, "withdrawn")
        mail = await mail_of(
            smtp_sink, enrollment_id, {f"outcome-reminder-{(await _demo(sessions, enrollment_id)).id}", "closed"}
        )
    steps = [s["state"] for s in closed["steps"]]
    assert steps[-3:] == ["demo_scheduled", "awaiting_outcome", "withdrawn"]
    assert closed["failure_reason"] == "no outcome was reported after the demo lesson"
    assert datetime.fromisoformat(closed["demo_lesson_at"]) == demo_start
    reminder = next(messages for key, messages in mail.items() if key.startswith("outcome-reminder"))
    assert len(reminder) == 1
    assert reminder[0]["rcpt_tos"] == [ALWAYS]
    assert (await teacher_by_email(sessions, ALWAYS)).active_students == 0


async def test_the_family_is_reminded_before_the_demo(
    api: httpx.AsyncClient,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    make_settings,
    settings: Settings,
    smtp_sink: SmtpSink,
    temporal_client: Client,
) -> None:
    await _always_available_teacher(sessions)
    now = datetime.now(UTC)
    demo_start = _next_hour(now + timedelta(hours=1))
    fast = make_settings(demo_min_notice=timedelta(0), demo_reminder_before=demo_start - now - timedelta(seconds=3))
    async with enrollment_worker(deps=build_deps(fast, sessions, temporal_client)):
        enrollment_id = await enroll(api, application(preferred_windows=_pinned_window(demo_start, settings)))
        await wait_for_state(api, enrollment_id, "demo_scheduled")
        demo = await _demo(sessions, enrollment_id)
        mail = await mail_of(smtp_sink, enrollment_id, {"welcome-parent", f"demo-reminder-{demo.id}"})
    reminder = mail[f"demo-reminder-{demo.id}"]
    assert len(reminder) == 1
    assert "Al W." in reminder[0]["text"]
    assert mail["welcome-parent"][0]["received_at"] < reminder[0]["received_at"]
    assert (await enrollment_row(sessions, enrollment_id)).state == "demo_scheduled"


async def _demo(sessions: SessionFactory, enrollment_id: str) -> Lesson:
    async with sessions() as session:
        row = await enrollment_row(sessions, enrollment_id)
        demo = await session.scalar(select(Lesson).where(col(Lesson.id) == row.demo_lesson_id))
        assert demo is not None
        return demo
