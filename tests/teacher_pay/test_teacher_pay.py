"""Teacher pay on the real stack: a period's report counts each lesson once and agrees with the lessons table, the
CSV parses, the rate is the admin's to set, and the pay period's schedule emails the office once."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import partial
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, ScheduleHandle

from core.db import SessionFactory, transaction
from core.settings import Settings
from devstack.smtp_sink import SmtpSink
from domain.teacher_pay import PayPeriod, last_complete_period
from models import Lesson, Role
from tests.school_api.conftest import API
from tests.waiting import eventually
from workers.schedules import ensure_schedules, schedule_id, scheduled_jobs

# (minutes, kind, status, attendance) of each teacher's lessons in the period
MIX: list[tuple[int, str, str, str | None]] = [
    (30, "regular", "completed", "present"),
    (45, "regular", "completed", "late"),
    (60, "makeup", "completed", "present"),
    (45, "regular", "no_show", "absent"),  # forfeited: paid by the default rule
    (30, "regular", "no_show", "excused"),  # never paid
    (60, "regular", "cancelled", None),
    (30, "regular", "completed", None),  # completed before attendance existed
]


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(office_email=f"office-{uuid.uuid4().hex[:8]}@cedar.test")


async def _lessons(
    sessions: SessionFactory, teacher_id: uuid.UUID, student_id: uuid.UUID, day: date, settings: Settings
) -> None:
    async with transaction(sessions) as session:
        at = datetime.combine(day, time(9), tzinfo=settings.timezone)
        for minutes, kind, status, attendance in MIX:
            session.add(
                Lesson(
                    kind=kind,
                    status=status,
                    attendance=attendance,
                    teacher_id=teacher_id,
                    student_id=student_id,
                    starts_at=at,
                    ends_at=at + timedelta(minutes=minutes),
                )
            )
            at += timedelta(hours=1, minutes=30)


async def _set_rate(api: httpx.AsyncClient, admin: dict[str, str], teacher_id: uuid.UUID, rate: int) -> None:
    changed = await api.patch(f"{API}/teachers/{teacher_id}", json={"hourly_rate_minor": rate}, headers=admin)
    assert changed.status_code == 200, changed.text
    assert changed.json()["hourly_rate_minor"] == rate


async def test_a_periods_report_counts_each_lesson_once_and_matches_the_lessons_table(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    auth_headers: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
) -> None:
    family, ana, bo = await make_family(), await make_teacher(), await make_teacher()
    admin = await auth_headers(Role.admin)
    await _set_rate(api, admin, ana.teacher.id, 4000)
    await _set_rate(api, admin, bo.teacher.id, 3333)
    start, end = date(2026, 10, 1), date(2026, 10, 16)
    await _lessons(sessions, ana.teacher.id, family.students[0].id, date(2026, 10, 5), settings)
    await _lessons(sessions, bo.teacher.id, family.students[0].id, date(2026, 10, 15), settings)
    await _lessons(sessions, bo.teacher.id, family.students[0].id, date(2026, 10, 16), settings)  # the next period

    # A teacher may not set their own rate; bad input is a field-level 422 and changes nothing.
    own = await api.patch(f"{API}/teachers/{ana.teacher.id}", json={"hourly_rate_minor": 9999}, headers=ana.headers)
    assert own.status_code == 403
    negative = await api.patch(f"{API}/teachers/{ana.teacher.id}", json={"hourly_rate_minor": -1}, headers=admin)
    assert negative.status_code == 422
    assert "hourly_rate_minor" in negative.json()["fields"]

    period = {"period_start": str(start), "period_end": str(end)}
    response = await api.get(f"{API}/teacher-pay/report", params=period, headers=admin)
    assert response.status_code == 200, response.text
    report = response.json()
    lines = {line["teacher_id"]: line for line in report["lines"]}
    a, b = lines[str(ana.teacher.id)], lines[str(bo.teacher.id)]
    # 30 + 45 + 60 + 30 taught, 45 forfeited: 210 minutes in 5 lessons (4 taught, 1 make-up), each teacher.
    assert (a["lessons_taught"], a["makeups_taught"], a["forfeited_paid"], a["paid_lessons"]) == (4, 1, 1, 5)
    assert (a["paid_minutes"], a["hours"], a["amount_minor"]) == (210, "3.50", 14000)
    assert (b["paid_minutes"], b["amount_minor"]) == (210, 11666)  # 3.5 h × 33.33, rounded once

    # The lessons table, asked directly, agrees (so does the sum over every teacher).
    async with sessions() as session:
        rows = await session.execute(
            text(
                "SELECT teacher_id, count(*) AS n, sum(extract(epoch FROM ends_at - starts_at) / 60) AS minutes "
                "FROM lessons WHERE starts_at >= :since AND starts_at < :before "
                "AND (status = 'completed' OR (status = 'no_show' AND attendance IS DISTINCT FROM 'excused')) "
                "GROUP BY teacher_id"
            ),
            {
                "since": datetime.combine(start, time(0), tzinfo=settings.timezone),
                "before": datetime.combine(end, time(0), tzinfo=settings.timezone),
            },
        )
        table = {str(row.teacher_id): (row.n, int(row.minutes)) for row in rows}
    assert {k: (v["paid_lessons"], v["paid_minutes"]) for k, v in lines.items() if v["paid_lessons"]} == table
    assert report["paid_minutes"] == sum(minutes for _, minutes in table.values())

    as_csv = await api.get(f"{API}/teacher-pay/report.csv", params=period, headers=admin)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    parsed = {row["teacher_id"]: row for row in csv.DictReader(io.StringIO(as_csv.text))}
    assert parsed[str(ana.teacher.id)]["amount_minor"] == "14000"
    assert parsed[str(bo.teacher.id)]["hours"] == "3.50"
    assert parsed[str(bo.teacher.id)]["period_end"] == str(end)

    assert (await api.get(f"{API}/teacher-pay/report", params=period, headers=ana.headers)).status_code == 403
    backwards = await api.get(
        f"{API}/teacher-pay/report", params={"period_start": str(end), "period_end": str(start)}, headers=admin
    )
    assert backwards.status_code == 422
    assert "period_end" in backwards.json()["fields"]


async def _runs_done(handle: ScheduleHandle, count: int) -> bool:
    info = (await handle.describe()).info
    return len(info.recent_actions) >= count and not info.running_actions


async def test_the_pay_period_schedule_emails_the_office_once(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Client,
    smtp_sink: SmtpSink,
    run_worker: Callable[..., Any],
    auth_headers: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
) -> None:
    family, teacher = await make_family(), await make_teacher()
    await _set_rate(api, await auth_headers(Role.admin), teacher.teacher.id, 4000)
    start, end = last_complete_period(datetime.now(settings.timezone).date(), PayPeriod(settings.teacher_pay_period))
    await _lessons(sessions, teacher.teacher.id, family.students[0].id, start, settings)

    await ensure_schedules(temporal_client, settings)
    handle = temporal_client.get_schedule_handle(schedule_id(settings, "teacher-pay"))
    try:
        async with run_worker():
            for fired in (1, 2):
                await handle.trigger()
                await eventually(partial(_runs_done, handle, fired), timeout=30, what=f"pay run {fired}")
            action = (await handle.describe()).info.recent_actions[-1].action
            assert isinstance(action, ScheduleActionExecutionStartWorkflow)
            result = await temporal_client.get_workflow_handle(action.workflow_id).result()
    finally:
        for job in scheduled_jobs(settings):
            await temporal_client.get_schedule_handle(schedule_id(settings, job)).delete()

    assert result["already_sent"] is True  # the second run found the period's email sent
    assert (result["period_start"], result["period_end"]) == (str(start), str(end))
    [mail] = smtp_sink.messages(to=settings.office_email)
    assert mail["subject"].strip() == f"Teacher pay report: {start} to {end - timedelta(days=1)}"
    assert teacher.teacher.display_name in mail["text"]
    assert "3.50" in mail["text"]
    assert "$140.00 CAD" in mail["text"]
