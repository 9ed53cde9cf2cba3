"""Lesson reminders in pages: more lessons than a few pages all get their reminder, once each, while the workflow
continues as new with its cursor so its history stays bounded."""

from __future__ import annotations

import dataclasses
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment

from activities.email import EmailActivities
from activities.scheduled import ScheduledActivities
from core.contracts.scheduled import (
    LESSON_REMINDERS_WORKFLOW,
    ReminderPage,
    ReminderPageResult,
    RemindersReport,
    RemindersRequest,
)
from core.db import SessionFactory, transaction
from core.settings import Settings
from devstack.smtp_sink import SmtpSink
from domain.calendar import local_to_utc
from models import Communication, Lesson
from tests.dunning.conftest import Family, make_family
from workers.main import build_deps

LESSONS = 10
PAGE = 3


async def _lessons_tomorrow(sessions: SessionFactory, settings: Settings, family: Family, count: int) -> set[uuid.UUID]:
    """``count`` of the family's lessons tomorrow, an hour apart; their ids."""
    tz = settings.timezone
    tomorrow = datetime.now(tz).date() + timedelta(days=1)
    async with transaction(sessions) as session:
        lessons = [
            Lesson(
                kind="regular",
                teacher_id=family.teacher_id,
                student_id=family.student_id,
                enrollment_id=family.enrollment_id,
                starts_at=local_to_utc(tomorrow, time(8 + n), tz),
                ends_at=local_to_utc(tomorrow, time(8 + n, 30), tz),
            )
            for n in range(count)
        ]
        session.add_all(lessons)
    return {lesson.id for lesson in lessons}


async def test_reminders_for_more_lessons_than_a_page_all_go_out_once_each(
    make_settings: Callable[..., Settings],
    sessions: SessionFactory,
    temporal_client: Client,
    smtp_sink: SmtpSink,
    run_worker: Callable[..., AbstractAsyncContextManager[Any]],
) -> None:
    settings = make_settings(lesson_reminder_page_size=PAGE)
    family = await make_family(sessions, lessons=0)
    lesson_ids = await _lessons_tomorrow(sessions, settings, family, LESSONS)

    async with run_worker(build_deps(settings, sessions, temporal_client)):
        handle = await temporal_client.start_workflow(
            LESSON_REMINDERS_WORKFLOW,
            RemindersRequest(pages_per_run=2),
            id=f"reminders-{uuid.uuid4()}",
            task_queue=settings.task_queue,
            result_type=RemindersReport,
        )
        report = await handle.result()  # follows the run chain to its last run
        first = temporal_client.get_workflow_handle(handle.id, run_id=handle.result_run_id)
        assert (await first.describe()).status == WorkflowExecutionStatus.CONTINUED_AS_NEW
        events = (await first.fetch_history()).events
        scheduled = [e for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
        assert len(scheduled) == 2  # one activity per page, two pages a run
        again = await temporal_client.execute_workflow(
            LESSON_REMINDERS_WORKFLOW,
            RemindersRequest(pages_per_run=2),
            id=f"reminders-{uuid.uuid4()}",
            task_queue=settings.task_queue,
            result_type=RemindersReport,
        )

    assert (report.due, report.sent, report.already_sent) == (LESSONS, LESSONS, 0)
    assert report.pages == -(-LESSONS // PAGE)
    assert (again.due, again.sent) == (0, 0)  # nothing left to remind
    sent = Counter(
        message["headers"].get("X-Cedar-Dedup-Key")
        for message in smtp_sink.messages(to=family.email)
        if message["subject"].strip().startswith("Reminder")
    )
    assert sent == {f"lesson:{lesson_id}:reminder": 1 for lesson_id in lesson_ids}
    async with sessions() as session:
        unmarked = await session.scalar(
            select(func.count())
            .select_from(Lesson)
            .where(col(Lesson.id).in_(lesson_ids), col(Lesson.reminder_sent_at).is_(None))
        )
        rows = await session.scalar(
            select(func.count()).select_from(Communication).where(col(Communication.dedup_key).like("lesson:%"))
        )
    assert unmarked == 0
    assert rows == LESSONS


async def test_a_retried_reminder_page_resumes_past_the_lessons_its_heartbeat_recorded(
    make_settings: Callable[..., Settings], sessions: SessionFactory, temporal_client: Client, smtp_sink: SmtpSink
) -> None:
    settings = make_settings(lesson_reminder_page_size=PAGE)
    family = await make_family(sessions, lessons=0)
    lesson_ids = sorted(await _lessons_tomorrow(sessions, settings, family, PAGE + 2))
    deps = build_deps(settings, sessions, temporal_client)
    emails = EmailActivities(settings, sessions, deps.mailer, deps.identity)
    activities = ScheduledActivities(settings, sessions, temporal_client, emails)
    env = ActivityEnvironment()
    beats: list[ReminderPageResult] = []
    env.on_heartbeat = lambda *details: beats.append(ReminderPageResult.model_validate(details[0]))
    # The page's first attempt reminded the first lesson, heartbeat, and then its worker died.
    done = ReminderPageResult(due=1, sent=1, last_lesson_id=lesson_ids[0])
    env.info = dataclasses.replace(env.info, heartbeat_details=[done.model_dump(mode="json")])

    page = await env.run(activities.send_reminder_page, ReminderPage(as_of=datetime.now(UTC)))

    assert [beat.last_lesson_id for beat in beats] == lesson_ids[1:PAGE]  # the page keeps its size
    assert (page.due, page.sent, page.last_lesson_id, page.more) == (PAGE, PAGE, lesson_ids[PAGE - 1], True)
    sent = {m["headers"].get("X-Cedar-Dedup-Key") for m in smtp_sink.messages(to=family.email)}
    assert sent == {f"lesson:{lesson_id}:reminder" for lesson_id in lesson_ids[1:PAGE]}
