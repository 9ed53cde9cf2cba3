"""The I/O of two schedule-driven workflows: the dunning sweep's families and lesson reminders' lessons (the
nightly reconciliation's is in activities/reconciliation.py)."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, time, timedelta

from sqlalchemy import select, update
from sqlmodel import col
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.email import EmailActivities
from core.contracts.dunning import FAMILY_DUNNING_WORKFLOW, SIGNAL_REEVALUATE, Reevaluate
from core.contracts.email import SendEmail
from core.contracts.scheduled import (
    DueReminders,
    LessonRef,
    LessonReminder,
    ReminderPage,
    ReminderPageResult,
    SweepReport,
    SweepRequest,
)
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

# The unpaged reminders' limit, for runs started before reminders paged.
REMINDER_BATCH_LIMIT = 2000


def reminder_email(reminder: LessonReminder) -> SendEmail:
    """A lesson's reminder: sent once, by its dedup key."""
    return SendEmail(
        template="lesson_reminder",
        dedup_key=f"lesson:{reminder.lesson_id}:reminder",
        to="parent",
        parent_id=reminder.parent_id,
        teacher_id=reminder.teacher_id,
        enrollment_id=reminder.enrollment_id,
        context={"lesson_at_local": reminder.lesson_at_local},
    )


class ScheduledActivities:
    def __init__(self, settings: Settings, sessions: SessionFactory, temporal: Client, emails: EmailActivities) -> None:
        self._settings = settings
        self._sessions = sessions
        self._temporal = temporal
        self._emails = emails

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

    @activity.defn(name="scheduled.send_reminder_page")
    async def send_reminder_page(self, page: ReminderPage) -> ReminderPageResult:
        """Reminds one page of tomorrow's lessons after the cursor, each through the email activity's dedup-keyed
        path, and marks each lesson; heartbeats after each lesson, so a retry resumes past the ones done."""
        details = activity.info().heartbeat_details
        progress = ReminderPageResult.model_validate(details[0]) if details else ReminderPageResult()
        after = progress.last_lesson_id or page.after_lesson_id
        size = self._settings.lesson_reminder_page_size
        if progress.last_lesson_id is not None:
            size -= progress.due  # the page keeps its size across a resume
        due = await self._due_lessons(page.as_of, after, size + 1)
        for reminder in due[:size]:
            result = await self._emails.send_email(reminder_email(reminder))
            await self.mark_reminded(LessonRef(lesson_id=reminder.lesson_id))
            progress.due += 1
            progress.already_sent += result.already_sent
            progress.sent += not result.already_sent
            progress.last_lesson_id = reminder.lesson_id
            # A copy: the SDK sends heartbeat details later, while this goes on changing its progress.
            activity.heartbeat(progress.model_copy(deep=True))
        progress.more = len(due) > size
        if progress.last_lesson_id is None:
            progress.last_lesson_id = page.after_lesson_id
        return progress

    @activity.defn(name="scheduled.lessons_due_for_reminder")
    async def lessons_due_for_reminder(self, request: DueReminders) -> list[LessonReminder]:
        """Tomorrow's scheduled lessons (in the school's timezone) whose family has not been reminded yet (kept
        for runs started before reminders paged)."""
        return await self._due_lessons(request.as_of, None, REMINDER_BATCH_LIMIT)

    async def _due_lessons(self, as_of: datetime, after: uuid.UUID | None, limit: int) -> list[LessonReminder]:
        """Tomorrow's (from ``as_of``, in the school's timezone) scheduled lessons not reminded yet, in lesson-id
        order after ``after``: a keyset page."""
        tz = self._settings.timezone
        tomorrow = as_of.astimezone(tz).date() + timedelta(days=1)
        start = local_to_utc(tomorrow, time(0), tz)
        end = local_to_utc(tomorrow + timedelta(days=1), time(0), tz)
        query = (
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
            .order_by(col(Lesson.id))
            .limit(limit)
        )
        if after is not None:
            query = query.where(col(Lesson.id) > after)
        async with self._sessions() as session:
            rows = await session.execute(query)
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
