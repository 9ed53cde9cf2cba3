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
    from activities.scheduled import ScheduledActivities, reminder_email
    from core.contracts.scheduled import (
        DUNNING_SWEEP_WORKFLOW,
        LESSON_REMINDERS_WORKFLOW,
        RECONCILIATION_WORKFLOW,
        DueReminders,
        LessonRef,
        LessonReminder,
        ReconcilePage,
        ReconcileRequest,
        ReconciliationReport,
        ReminderPage,
        RemindersReport,
        RemindersRequest,
        SweepReport,
        SweepRequest,
    )

RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10)
REMINDERS_AT_ONCE = 10
# Reminders and reconciliation work in pages of one activity each, continuing as new with their cursor.
REMINDERS_IN_PAGES_PATCH = "lesson-reminders-in-pages"
RECONCILIATION_IN_PAGES_PATCH = "reconciliation-in-pages"


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
    async def run(self, request: RemindersRequest) -> RemindersReport:
        if not workflow.patched(REMINDERS_IN_PAGES_PATCH):
            return await self._unpaged()
        as_of = request.as_of or workflow.now()
        report = request.so_far or RemindersReport(due=0, sent=0, already_sent=0)
        cursor = request.after_lesson_id
        for _ in range(request.pages_per_run):
            page = await workflow.execute_activity_method(
                ScheduledActivities.send_reminder_page,
                ReminderPage(as_of=as_of, after_lesson_id=cursor),
                start_to_close_timeout=timedelta(minutes=10),
                heartbeat_timeout=timedelta(minutes=1),
                retry_policy=RETRY,
            )
            report.due += page.due
            report.sent += page.sent
            report.already_sent += page.already_sent
            report.pages += 1
            cursor = page.last_lesson_id
            if not page.more:
                return report
            if workflow.info().is_continue_as_new_suggested():
                break
        workflow.continue_as_new(
            RemindersRequest(as_of=as_of, after_lesson_id=cursor, so_far=report, pages_per_run=request.pages_per_run)
        )

    async def _unpaged(self) -> RemindersReport:
        """Runs started before reminders paged: every due lesson at once, two activities each."""
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
            reminder_email(reminder),
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
        if not workflow.patched(RECONCILIATION_IN_PAGES_PATCH):
            return await self._unpaged(request)
        report = request.so_far or ReconciliationReport(families=0, invoices_checked=0, differences=[])
        cursor = request.after_account_id
        while True:
            page = await workflow.execute_activity_method(
                ReconciliationActivities.reconcile_page,
                ReconcilePage(parent_id=request.parent_id, after_account_id=cursor),
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=timedelta(seconds=30),
                retry_policy=RETRY,
            )
            report.add(page)
            cursor = page.last_account_id
            if not page.more:
                break
            if workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(
                    ReconcileRequest(parent_id=request.parent_id, after_account_id=cursor, so_far=report)
                )
        if report.unrepaired_total:
            workflow.logger.warning("reconciliation left %d differences for a person", report.unrepaired_total)
        return report

    async def _unpaged(self, request: ReconcileRequest) -> ReconciliationReport:
        """Runs started before reconciliation paged: one activity for every family."""
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
