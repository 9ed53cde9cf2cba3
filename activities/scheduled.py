"""The I/O of two schedule-driven workflows: the dunning sweep's families and lesson reminders' lessons (the
nightly reconciliation's is in activities/reconciliation.py)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select, update
from sqlmodel import col
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.contracts.dunning import FAMILY_DUNNING_WORKFLOW, SIGNAL_REEVALUATE, Reevaluate
from core.contracts.scheduled import DueReminders, LessonRef, LessonReminder, SweepReport, SweepRequest
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.temporal import dunning_workflow_id, dunning_workflow_parent
from domain.calendar import local_to_utc
from domain.dunning import DunningState
from domain.local_time import format_local
from models import (
    BillingAccount,
    Lesson,
    LessonKind,
    LessonStatus,
    Student,
)

log = logging.getLogger("cedar.scheduled")

REMINDER_BATCH_LIMIT = 2000


class ScheduledActivities:
    def __init__(self, settings: Settings, sessions: SessionFactory, temporal: Client) -> None:
        self._settings = settings
        self._sessions = sessions
        self._temporal = temporal

    # --- the daily dunning sweep ---

    @activity.defn(name="scheduled.sweep_dunning")
    async def sweep_dunning(self, request: SweepRequest) -> SweepReport:
        """Nudges every family in dunning to re-evaluate now: those the database says are in arrears, and every
        running dunning workflow of this task queue (Temporal visibility)."""
        async with self._sessions() as session:
            in_arrears = set(
                await session.scalars(
                    select(col(BillingAccount.parent_id)).where(
                        col(BillingAccount.dunning_state).in_((DunningState.WARNING, DunningState.SUSPENDED))
                    )
                )
            )
        query = (
            f"WorkflowType = '{FAMILY_DUNNING_WORKFLOW}' AND ExecutionStatus = 'Running' "
            f"AND TaskQueue = '{self._settings.task_queue}'"
        )
        running = {dunning_workflow_parent(execution.id) async for execution in self._temporal.list_workflows(query)}
        nudged, not_running = 0, []
        for parent_id in sorted(in_arrears | running, key=str):
            try:
                await self._temporal.get_workflow_handle(dunning_workflow_id(parent_id)).signal(
                    SIGNAL_REEVALUATE, Reevaluate(reason=request.reason)
                )
                nudged += 1
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:
                    raise
                not_running.append(parent_id)
            activity.heartbeat(nudged)
        if not_running:
            log.warning("dunning sweep: %d families in arrears have no running dunning workflow", len(not_running))
        return SweepReport(nudged=nudged, not_running=not_running)

    # --- lesson reminders ---

    @activity.defn(name="scheduled.lessons_due_for_reminder")
    async def lessons_due_for_reminder(self, request: DueReminders) -> list[LessonReminder]:
        """Tomorrow's scheduled lessons (in the school's timezone) whose family has not been reminded yet."""
        tz = self._settings.timezone
        tomorrow = request.as_of.astimezone(tz).date() + timedelta(days=1)
        start = local_to_utc(tomorrow, time(0), tz)
        end = local_to_utc(tomorrow + timedelta(days=1), time(0), tz)
        async with self._sessions() as session:
            rows = await session.execute(
                select(
                    col(Lesson.id),
                    col(Lesson.enrollment_id),
                    col(Student.parent_id),
                    col(Lesson.teacher_id),
                    col(Lesson.starts_at),
                )
                .join(Student, col(Student.id) == col(Lesson.student_id))
                .where(
                    col(Lesson.status) == LessonStatus.scheduled,
                    col(Lesson.kind).in_((LessonKind.regular, LessonKind.makeup)),
                    col(Lesson.reminder_sent_at).is_(None),
                    col(Lesson.enrollment_id).is_not(None),
                    col(Lesson.starts_at) >= start,
                    col(Lesson.starts_at) < end,
                )
                .order_by(col(Lesson.starts_at))
                .limit(REMINDER_BATCH_LIMIT)
            )
            return [
                LessonReminder(
                    lesson_id=lesson_id,
                    enrollment_id=enrollment_id,
                    parent_id=parent_id,
                    teacher_id=teacher_id,
                    lesson_at_local=format_local(starts_at, tz),
                )
                for lesson_id, enrollment_id, parent_id, teacher_id, starts_at in rows.all()
            ]

    @activity.defn(name="scheduled.mark_reminded")
    async def mark_reminded(self, lesson: LessonRef) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(Lesson)
                .where(col(Lesson.id) == lesson.lesson_id, col(Lesson.reminder_sent_at).is_(None))
                .values(reminder_sent_at=datetime.now(UTC))
            )
