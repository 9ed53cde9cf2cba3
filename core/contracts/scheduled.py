"""The contracts of the workflows Temporal Schedules start (``workers/schedules.py``): the daily dunning sweep,
lesson reminders, the nightly reconciliation and the Stripe catch-up; their inputs, results and activities' I/O.
Each is an empty-able model, so fields can be added without breaking running schedules."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

DUNNING_SWEEP_WORKFLOW = "DunningSweepWorkflow"
LESSON_REMINDERS_WORKFLOW = "LessonRemindersWorkflow"
RECONCILIATION_WORKFLOW = "ReconciliationWorkflow"
STRIPE_CATCHUP_WORKFLOW = "StripeCatchupWorkflow"

# --- the daily dunning sweep ---------------------------------------------------------------------------------


class SweepRequest(BaseModel):
    reason: str = "daily_sweep"


class SweepReport(BaseModel):
    nudged: int
    # Families whose billing account says warning/suspended but whose dunning workflow is not running.
    not_running: list[uuid.UUID]


# --- lesson reminders ----------------------------------------------------------------------------------------


class RemindersRequest(BaseModel):
    """Empty today; a model so fields can be added without breaking running schedules."""


class RemindersReport(BaseModel):
    due: int
    sent: int
    already_sent: int


class DueReminders(BaseModel):
    as_of: datetime


class LessonReminder(BaseModel):
    lesson_id: uuid.UUID
    enrollment_id: uuid.UUID
    parent_id: uuid.UUID
    teacher_id: uuid.UUID
    lesson_at_local: str


class LessonRef(BaseModel):
    lesson_id: uuid.UUID


# --- the nightly reconciliation ------------------------------------------------------------------------------


class ReconcileRequest(BaseModel):
    # Only for tests and operators: reconcile one family instead of every family with a Stripe customer.
    parent_id: uuid.UUID | None = None


class Difference(BaseModel):
    """One way our books and Stripe disagree, and what was done about it (``repair`` None: reported only)."""

    kind: str
    parent_id: uuid.UUID | None = None
    stripe_invoice_id: str | None = None
    detail: str
    stripe_status: str | None = None
    repair: str | None = None


class ReconciliationReport(BaseModel):
    families: int
    invoices_checked: int
    differences: list[Difference]

    @property
    def unrepaired(self) -> list[Difference]:
        return [d for d in self.differences if d.repair is None]


# --- the Stripe catch-up (missed webhooks, and the revenue of completed lessons) -----------------------------


class CatchUpRequest(BaseModel):
    # For a test or an operator: list from here instead of the stored checkpoint.
    since: datetime | None = None


class CatchUpResult(BaseModel):
    listed: int
    stored: int
    handed_over: int
    checkpoint: datetime
    lessons_recognized: int = 0


class RecognizeLessons(BaseModel):
    limit: int = 500
