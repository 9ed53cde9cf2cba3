"""Cedar's Temporal Schedules, created or brought in line with the settings idempotently.

Run once per deploy (the k8s job, ``./cedar run`` at start) and by hand: ``python -m workers.schedules`` (prints
each schedule id); never at worker start, so scaling workers touches no schedule. An operator's pause (and its
note) survives the command: only the action, spec and policy are brought in line. Times are cron expressions in
the school's timezone; a schedule never overlaps itself (SKIP) and catches up at most
``settings.schedule_catchup_window`` after an outage, so a long outage does not fire a burst. Each run is timed
out after ``settings.schedule_execution_timeout``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from dataclasses import dataclass

from pydantic import BaseModel
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from core.contracts.reenrollment import REENROLLMENT_OPENING_WORKFLOW, OpenReenrollment
from core.contracts.retention import RETENTION_WORKFLOW, RetentionRequest
from core.contracts.scheduled import (
    DUNNING_SWEEP_WORKFLOW,
    LESSON_REMINDERS_WORKFLOW,
    RECONCILIATION_WORKFLOW,
    STRIPE_CATCHUP_WORKFLOW,
    CatchUpRequest,
    ReconcileRequest,
    RemindersRequest,
    SweepRequest,
)
from core.contracts.teacher_pay import TEACHER_PAY_WORKFLOW, PayReportRequest
from core.logging import configure_logging
from core.process import exit_after
from core.settings import Settings
from core.temporal import connect_temporal

log = logging.getLogger("cedar.schedules")


@dataclass(frozen=True)
class ScheduledJob:
    name: str
    workflow: str
    argument: BaseModel
    cron: str


def scheduled_jobs(settings: Settings) -> list[ScheduledJob]:
    return [
        ScheduledJob("dunning-sweep", DUNNING_SWEEP_WORKFLOW, SweepRequest(), settings.dunning_sweep_cron),
        ScheduledJob("lesson-reminders", LESSON_REMINDERS_WORKFLOW, RemindersRequest(), settings.lesson_reminder_cron),
        ScheduledJob("stripe-catchup", STRIPE_CATCHUP_WORKFLOW, CatchUpRequest(), settings.webhook_catchup_cron),
        ScheduledJob("reconciliation", RECONCILIATION_WORKFLOW, ReconcileRequest(), settings.reconciliation_cron),
        ScheduledJob("teacher-pay", TEACHER_PAY_WORKFLOW, PayReportRequest(), settings.teacher_pay_cron),
        ScheduledJob(
            "reenrollment-opening", REENROLLMENT_OPENING_WORKFLOW, OpenReenrollment(), settings.reenrollment_cron
        ),
        ScheduledJob("retention", RETENTION_WORKFLOW, RetentionRequest(), settings.retention_cron),
    ]


def schedule_id(settings: Settings, job: ScheduledJob | str) -> str:
    """``cedar-dunning-sweep`` in production: prefixed by the task queue, so two deployments (or two tests)
    sharing a Temporal namespace keep their own schedules."""
    return f"{settings.task_queue}-{job if isinstance(job, str) else job.name}"


def build_schedule(settings: Settings, job: ScheduledJob) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            job.workflow,
            job.argument,
            # Temporal appends the fire time, so each run has its own id derived from the schedule's.
            id=schedule_id(settings, job),
            task_queue=settings.task_queue,
            execution_timeout=settings.schedule_execution_timeout,
            static_summary=f"Scheduled {job.name} ({job.cron})",
        ),
        spec=ScheduleSpec(cron_expressions=[job.cron], time_zone_name=settings.school_timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=settings.schedule_catchup_window),
    )


async def ensure_schedules(client: Client, settings: Settings) -> list[str]:
    """Creates each schedule, or replaces an existing one's action, spec and policy with the settings', keeping
    its state (an operator's pause and note)."""
    ids = []
    for job in scheduled_jobs(settings):
        schedule, sid = build_schedule(settings, job), schedule_id(settings, job)
        try:
            await client.create_schedule(sid, schedule)
            log.info("schedule %s created (%s)", sid, job.cron)
        except ScheduleAlreadyRunningError:

            def replace(current: ScheduleUpdateInput, schedule: Schedule = schedule) -> ScheduleUpdate:
                kept = dataclasses.replace(schedule, state=current.description.schedule.state)
                return ScheduleUpdate(schedule=kept)

            await client.get_schedule_handle(sid).update(replace)
            log.info("schedule %s updated (%s)", sid, job.cron)
        ids.append(sid)
    return ids


async def _main(settings: Settings) -> None:
    client = await connect_temporal(settings)
    for sid in await ensure_schedules(client, settings):
        print(sid)


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    asyncio.run(_main(settings))
    exit_after(0)


if __name__ == "__main__":
    main()
