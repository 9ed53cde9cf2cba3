"""The workflows Temporal Schedules start (workers/schedules.py): the daily dunning sweep, lesson reminders and the
nightly reconciliation. Each is safe to run twice: the sweep only nudges, a reminder is sent once per lesson
(its email's dedup key and ``Lesson.reminder_sent_at``), and reconciliation repairs through idempotent paths."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities
    from activities.reconciliation import ReconciliationActivities
    from activities.scheduled import ScheduledActivities
    from core.contracts.email import SendEmail
    from core.contracts.scheduled import (
        DUNNING_SWEEP_WORKFLOW,
        LESSON_REMINDERS_WORKFLOW,
        RECONCILIATION_WORKFLOW,
        DueReminders,
        LessonRef,
        LessonReminder,
        ReconcileRequest,
        ReconciliationReport,
        RemindersReport,
        RemindersRequest,
        SweepReport,
        SweepRequest,
    )

RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10)
REMINDERS_AT_ONCE = 10


@workflow.defn(name=DUNNING_SWEEP_WORKFLOW)
class DunningSweepWorkflow:
    @workflow.run
    async def run(self, request: SweepRequest) -> SweepReport:
        return await workflow.execute_activity_method(
            ScheduledActivities.sweep_dunning,
            request,
            start_to_close_timeout=timedelta(minutes=10),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
        )


@workflow.defn(name=LESSON_REMINDERS_WORKFLOW)
class LessonRemindersWorkflow:
    @workflow.run
    async def run(self, _: RemindersRequest) -> RemindersReport:
        due = await workflow.execute_activity_method(
            ScheduledActivities.lessons_due_for_reminder,
            DueReminders(as_of=workflow.now()),
            start_to_close_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
        )
        already = 0
        for start in range(0, len(due), REMINDERS_AT_ONCE):
            batch = due[start : start + REMINDERS_AT_ONCE]
            already += sum(await asyncio.gather(*(self._remind(reminder) for reminder in batch)))
        return RemindersReport(due=len(due), sent=len(due) - already, already_sent=already)

    async def _remind(self, reminder: LessonReminder) -> bool:
        """Sends one lesson's reminder (once, by its dedup key) and marks the lesson; True if it had been sent."""
        result = await workflow.execute_activity_method(
            EmailActivities.send_email,
            SendEmail(
                template="lesson_reminder",
                dedup_key=f"lesson:{reminder.lesson_id}:reminder",
                to="parent",
                parent_id=reminder.parent_id,
                teacher_id=reminder.teacher_id,
                enrollment_id=reminder.enrollment_id,
                context={"lesson_at_local": reminder.lesson_at_local},
            ),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RETRY,
        )
        await workflow.execute_activity_method(
            ScheduledActivities.mark_reminded,
            LessonRef(lesson_id=reminder.lesson_id),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=RETRY,
        )
        return result.already_sent


@workflow.defn(name=RECONCILIATION_WORKFLOW)
class ReconciliationWorkflow:
    @workflow.run
    async def run(self, request: ReconcileRequest) -> ReconciliationReport:
        report = await workflow.execute_activity_method(
            ReconciliationActivities.reconcile,
            request,
            start_to_close_timeout=timedelta(minutes=30),
            heartbeat_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        if report.unrepaired:
            workflow.logger.warning("reconciliation left %d differences for a person", len(report.unrepaired))
        return report
