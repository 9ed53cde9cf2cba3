"""Temporal Schedules: created by the deploy command (not at worker start), idempotent, keeping an operator's
pause, and their workflows (sweep, reminders) do their work once however often they fire."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, time, timedelta
from functools import partial
from typing import Any

from sqlalchemy import func, select
from sqlmodel import col
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
    ScheduleOverlapPolicy,
)

from core.contracts.scheduled import DUNNING_SWEEP_WORKFLOW
from core.db import SessionFactory, transaction
from core.settings import Settings
from devstack.smtp_sink import SmtpSink
from domain.calendar import local_to_utc
from models import BillingAccount, Communication, Lesson
from tests.dunning.conftest import DunningKit, failure, make_family
from tests.waiting import eventually
from workers.main import run
from workers.schedules import ensure_schedules, schedule_id, scheduled_jobs


async def _schedule_ids(client: Client, settings: Settings) -> list[str]:
    prefix = f"{settings.task_queue}-"
    return sorted([s.id async for s in await client.list_schedules() if s.id.startswith(prefix)])


async def _run_worker_until_polling(settings: Settings) -> None:
    """Starts the worker process's ``run`` and stops it through its own SIGTERM path once it listens."""
    before = signal.getsignal(signal.SIGTERM)
    worker = asyncio.create_task(run(settings))
    try:

        async def stop_handler_installed() -> bool:  # SIGTERM only once the worker listens for it
            return signal.getsignal(signal.SIGTERM) is not before

        await eventually(stop_handler_installed, timeout=20, what="the worker's SIGTERM handler")
    finally:
        if signal.getsignal(signal.SIGTERM) is not before:
            os.kill(os.getpid(), signal.SIGTERM)  # the worker's own stop path
            await asyncio.wait_for(worker, 60)
        else:  # never got that far: do not let SIGTERM's default end the test run
            worker.cancel()


async def test_the_deploy_command_upserts_schedules_and_keeps_an_operators_pause(
    make_settings: Callable[..., Settings], temporal_client: Client
) -> None:
    settings = make_settings(dunning_sweep_cron="15 8 * * *", schedule_execution_timeout=timedelta(minutes=50))
    expected = sorted(schedule_id(settings, job) for job in scheduled_jobs(settings))
    await _run_worker_until_polling(settings)
    assert await _schedule_ids(temporal_client, settings) == []  # a worker start creates no schedule

    assert sorted(await ensure_schedules(temporal_client, settings)) == expected
    sweep = temporal_client.get_schedule_handle(schedule_id(settings, "dunning-sweep"))
    try:
        await sweep.pause(note="card processor incident")
        changed = make_settings(dunning_sweep_cron="45 7 * * *", schedule_execution_timeout=timedelta(minutes=50))
        await ensure_schedules(temporal_client, changed)  # the next deploy
        await ensure_schedules(temporal_client, changed)
        await _run_worker_until_polling(changed)  # and a worker restart

        async def visible() -> list[str] | None:  # listing is eventually consistent
            ids = await _schedule_ids(temporal_client, settings)
            return ids if ids == expected else None

        assert len(await eventually(visible, timeout=10, what="no duplicate schedules")) == len(expected)
        described = await sweep.describe()
        assert described.schedule.state.paused
        assert described.schedule.state.note == "card processor incident"
        [calendar] = described.schedule.spec.calendars  # the server keeps a cron as a calendar
        assert ([r.start for r in calendar.hour], [r.start for r in calendar.minute]) == ([7], [45])  # updated
        assert described.schedule.spec.time_zone_name == "America/Vancouver"
        assert described.schedule.policy.overlap == ScheduleOverlapPolicy.SKIP
        assert described.schedule.policy.catchup_window == timedelta(days=1)
        for sid in expected:
            action = (await temporal_client.get_schedule_handle(sid).describe()).schedule.action
            assert isinstance(action, ScheduleActionStartWorkflow)
            assert action.execution_timeout == timedelta(minutes=50)
        assert isinstance(described.schedule.action, ScheduleActionStartWorkflow)
        assert described.schedule.action.workflow == DUNNING_SWEEP_WORKFLOW
        unpaused = (await temporal_client.get_schedule_handle(schedule_id(settings, "teacher-pay")).describe()).schedule
        assert not unpaused.state.paused  # the others stay as they were
    finally:
        for sid in expected:
            await temporal_client.get_schedule_handle(sid).delete()


async def _runs_done(handle: ScheduleHandle, count: int) -> bool:
    info = (await handle.describe()).info
    return len(info.recent_actions) >= count and not info.running_actions


async def _last_result(client: Client, handle: ScheduleHandle) -> Any:
    action = (await handle.describe()).info.recent_actions[-1].action
    assert isinstance(action, ScheduleActionExecutionStartWorkflow)
    return await client.get_workflow_handle(action.workflow_id).result()


async def test_lesson_reminders_are_sent_once_even_when_the_schedule_fires_twice(
    kit: DunningKit, sessions: SessionFactory, smtp_sink: SmtpSink
) -> None:
    settings, family = kit.settings, kit.family
    tz = settings.timezone
    tomorrow = datetime.now(tz).date() + timedelta(days=1)
    async with transaction(sessions) as session:
        lesson = await session.scalar(select(Lesson).where(col(Lesson.student_id) == family.student_id).limit(1))
        assert lesson is not None
        lesson.starts_at = local_to_utc(tomorrow, time(16, 30), tz)  # the others are days later
        lesson.ends_at = lesson.starts_at + timedelta(minutes=30)
    await ensure_schedules(kit.client, settings)
    handle = kit.client.get_schedule_handle(schedule_id(settings, "lesson-reminders"))
    try:
        for fired in (1, 2):
            await handle.trigger()
            await eventually(partial(_runs_done, handle, fired), timeout=20, what=f"reminder run {fired}")
        report = await _last_result(kit.client, handle)
        assert (report["due"], report["sent"]) == (0, 0)  # the second run found nothing left to send
    finally:
        for job in scheduled_jobs(settings):
            await kit.client.get_schedule_handle(schedule_id(settings, job)).delete()

    async with sessions() as session:
        reminded = await session.get(Lesson, lesson.id)
        rows = await session.scalar(
            select(func.count()).select_from(Communication).where(col(Communication.dedup_key).like("lesson:%"))
        )
    assert reminded is not None
    assert reminded.reminder_sent_at is not None
    assert rows == 1
    [mail] = [m for m in smtp_sink.messages(to=family.email) if m["subject"].strip().startswith("Reminder")]
    assert "Sam's piano lesson" in mail["subject"]
    assert "4:30 PM" in mail["text"]


async def test_the_daily_sweep_nudges_every_family_in_dunning(kit: DunningKit, sessions: SessionFactory) -> None:
    await kit.fail(failure(kit.family, decline_code="stolen_card"))
    stray = await make_family(sessions)  # the books say "warning", but no dunning workflow runs for it
    async with transaction(sessions) as session:
        session.add(
            BillingAccount(
                parent_id=stray.parent_id, workflow_id=f"family-billing-{uuid.uuid4()}", dunning_state="warning"
            )
        )
    await ensure_schedules(kit.client, kit.settings)
    handle = kit.client.get_schedule_handle(schedule_id(kit.settings, "dunning-sweep"))
    try:

        async def swept() -> Any:
            await handle.trigger()
            await eventually(lambda: _runs_done(handle, 1), timeout=20, what="the sweep")
            report = await _last_result(kit.client, handle)
            return report if report["nudged"] == 1 else None  # visibility lists new workflows within ~1 s

        report = await eventually(swept, timeout=15, what="a sweep that sees the running workflow")
    finally:
        for job in scheduled_jobs(kit.settings):
            await kit.client.get_schedule_handle(schedule_id(kit.settings, job)).delete()
    assert report["not_running"] == [str(stray.parent_id)]
    assert (await kit.snapshot()).state in ("clear", "warning")


async def test_the_documented_command_upserts_the_schedules(settings: Settings, temporal_client: Client) -> None:
    env = {
        **os.environ,
        "CEDAR_ENVIRONMENT": "test",
        "CEDAR_TEMPORAL_ADDRESS": settings.effective_temporal_address,
        "CEDAR_TASK_QUEUE": settings.task_queue,
        "CEDAR_LOG_LEVEL": "WARNING",
    }
    for _ in range(2):
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "workers.schedules", env=env, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0
    expected = sorted(schedule_id(settings, job) for job in scheduled_jobs(settings))
    assert sorted(out.decode().split()) == expected

    async def listed() -> bool:  # schedule listing is eventually consistent
        return await _schedule_ids(temporal_client, settings) == expected

    await eventually(listed, timeout=10, what="the schedules listed once each")
    for sid in expected:
        await temporal_client.get_schedule_handle(sid).delete()
