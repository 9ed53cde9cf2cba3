"""The contracts of the workflows Temporal Schedules start (``workers/schedules.py``): the daily dunning sweep,
lesson reminders, the nightly reconciliation and the Stripe catch-up; their inputs, results and activities' I/O.
Each is an empty-able model, so fields can be added without breaking running schedules."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

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


class RemindersReport(BaseModel):
    due: int
    sent: int
    already_sent: int
    pages: int = 0


class RemindersRequest(BaseModel):
    """Empty from the schedule; a continue-as-new carries the day being reminded, the cursor and the counts."""

    as_of: datetime | None = None
    after_lesson_id: uuid.UUID | None = None
    so_far: RemindersReport | None = None
    # Pages one run sends before it continues as new (sooner when Temporal suggests it).
    pages_per_run: int = Field(default=50, ge=1)


class ReminderPage(BaseModel):
    """One page of tomorrow's lessons (as of ``as_of``), after ``after_lesson_id`` in lesson-id order."""

    as_of: datetime
    after_lesson_id: uuid.UUID | None = None


class ReminderPageResult(BaseModel):
    """A page's counts and cursor; also the page activity's heartbeat, from which a retry resumes."""

    due: int = 0
    sent: int = 0
    already_sent: int = 0
    last_lesson_id: uuid.UUID | None = None
    more: bool = False


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


# The differences a report lists (those left for a person first); the rest are counted and logged.
REPORT_SAMPLE_SIZE = 20


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
    # A sample, at most REPORT_SAMPLE_SIZE (before paging: every difference); the totals count them all.
    differences: list[Difference]
    differences_total: int = 0
    unrepaired_total: int = 0
    by_kind: dict[str, int] = Field(default_factory=dict)
    pages: int = 0

    @property
    def unrepaired(self) -> list[Difference]:
        return [d for d in self.differences if d.repair is None]

    def add(self, page: ReconcilePageResult) -> None:
        """Adds a page's counts, keeping the sample bounded and those left for a person first."""
        self.families += page.families
        self.invoices_checked += page.invoices_checked
        self.differences_total += page.differences_total
        self.unrepaired_total += page.unrepaired_total
        for kind, count in page.by_kind.items():
            self.by_kind[kind] = self.by_kind.get(kind, 0) + count
        self.differences = bounded_sample([*self.differences, *page.differences])
        self.pages += 1


def bounded_sample(differences: list[Difference]) -> list[Difference]:
    return sorted(differences, key=lambda d: d.repair is not None)[:REPORT_SAMPLE_SIZE]


class ReconcileRequest(BaseModel):
    # Only for tests and operators: reconcile one family instead of every family with a Stripe customer.
    parent_id: uuid.UUID | None = None
    # Carried by a continue-as-new: the last billing account done and the report so far.
    after_account_id: uuid.UUID | None = None
    so_far: ReconciliationReport | None = None


class ReconcilePage(BaseModel):
    """The next page of billing accounts (with a Stripe customer) after ``after_account_id``, in id order."""

    parent_id: uuid.UUID | None = None
    after_account_id: uuid.UUID | None = None


class ReconcilePageResult(BaseModel):
    """A page's counts, bounded sample and cursor; also its heartbeat, from which a retry resumes."""

    families: int = 0
    invoices_checked: int = 0
    differences_total: int = 0
    unrepaired_total: int = 0
    by_kind: dict[str, int] = Field(default_factory=dict)
    differences: list[Difference] = Field(default_factory=list)
    last_account_id: uuid.UUID | None = None
    more: bool = False


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


class CatchUpProgress(BaseModel):
    """The catch-up's heartbeat: where its listing stands, so a retry resumes after the last page done."""

    checkpoint: datetime
    starting_after: str | None = None
    newest: datetime
    listed: int = 0
    stored: int = 0
    handed_over: int = 0


class RecognizeLessons(BaseModel):
    limit: int = 500
