"""EnrollmentWorkflow's contract: its input, its updates and query, and its activities' inputs and results.

Only ids, states and times travel here: names, emails and the application itself stay in the database.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

ENROLLMENT_WORKFLOW = "EnrollmentWorkflow"
UPDATE_DEMO_OUTCOME = "demo_outcome"
UPDATE_CANCEL = "cancel"
UPDATE_ASSIGN_TEACHER = "assign_teacher"
UPDATE_CONFIRM_FAMILY = "confirm_family"
# workflow.patched id: enrollments started before it never wait for a family's confirmation.
FAMILY_CONFIRMATION_PATCH = "family-confirmation"
# The failure type of create_account when a family appeared at the address after check_family: ask it first.
FAMILY_NOT_CONFIRMED = "FamilyNotConfirmed"
QUERY_STATUS = "status"
# From re-enrollment: the student returns (next semester's lessons are booked) or does not (finish at the last lesson).
UPDATE_CONTINUE_NEXT_SEMESTER = "continue_next_semester"
UPDATE_FINISH = "finish"
# workflow.patched id: active enrollments started before it end at their last lesson instead of waiting for
# re-enrollment's decision.
SEMESTER_END_PATCH = "semester-end"
# workflow.patched id: the hand-off waits for billing's answer and a refused start closes the enrollment as failed
# (compensated); enrollments started before it only signal billing.
BILLING_OUTCOME_PATCH = "billing-start-outcome"


class DemoOutcome(StrEnum):
    continue_ = "continue"
    withdraw = "withdraw"
    no_show = "no_show"


class FamilyDecision(StrEnum):
    confirm = "confirm"
    decline = "decline"


class EnrollmentInput(BaseModel):
    enrollment_id: uuid.UUID
    payment_method_id: str


class EnrollmentRef(BaseModel):
    enrollment_id: uuid.UUID


# --- updates and query ---------------------------------------------------------------------------------------


class DemoOutcomeRequest(BaseModel):
    outcome: DemoOutcome


class CancelRequest(BaseModel):
    # Who cancelled, in words the family's status page shows ("cancelled by the office"); never staff-typed text.
    reason: str = Field(default="cancelled on request", max_length=500)
    # The audit row holding the reason the person typed (the history keeps only this reference).
    note_id: uuid.UUID | None = None


class ConfirmFamilyRequest(BaseModel):
    """The existing family's answer, sent by the API once the emailed link's token has been checked."""

    decision: FamilyDecision


class AssignTeacherRequest(BaseModel):
    teacher_id: uuid.UUID


class ContinueNextSemesterRequest(BaseModel):
    """Next semester's lessons are booked on this enrollment: keep it active until their end."""

    lessons_end: datetime


class FinishRequest(BaseModel):
    """The student is not returning: complete the enrollment once its last lesson (``last_lesson_ends_at``, None
    when it has none) is over."""

    last_lesson_ends_at: datetime | None = None


class Accepted(BaseModel):
    state: str


class StepView(BaseModel):
    state: str
    at: datetime


class StatusView(BaseModel):
    """What the workflow says about itself (ids and times only)."""

    state: str
    steps: list[StepView]
    teacher_id: uuid.UUID | None = None
    demo_starts_at: datetime | None = None
    failure_reason: str | None = None


# --- activities ---------------------------------------------------------------------------------------------


class EnrollmentTimings(BaseModel):
    """The worker's delay settings, read once by the first activity so the workflow stays deterministic."""

    waitlist_timeout: timedelta
    waitlist_recheck_interval: timedelta
    demo_reminder_before: timedelta
    teacher_outcome_reminder_after: timedelta
    outcome_timeout_after_demo: timedelta
    # Optional: histories recorded before the family confirmation carry no such timing.
    family_confirmation_timeout: timedelta = timedelta(days=7)
    # How long after its last lesson an active enrollment that nobody decided on completes by itself.
    semester_end_grace: timedelta = timedelta(days=21)
    # How long the hand-off waits for billing's answer, and how often it heartbeats meanwhile.
    billing_start_timeout: timedelta = timedelta(minutes=10)
    billing_start_heartbeat: timedelta = timedelta(seconds=10)


class ValidatedEnrollment(BaseModel):
    payment_method_id: str
    instrument: str
    lesson_minutes: int
    billing_interval: str
    timings: EnrollmentTimings


class CheckPaymentMethod(BaseModel):
    enrollment_id: uuid.UUID  # keys the card check's Stripe calls
    payment_method_id: str


class FamilyCheck(BaseModel):
    """Whether the application's address already belongs to a family that has not agreed to this enrollment."""

    needs_confirmation: bool
    parent_id: uuid.UUID | None = None  # the existing family's parent, when there is one


class AccountCreated(BaseModel):
    parent_id: uuid.UUID
    student_id: uuid.UUID


class AssignTeacher(BaseModel):
    enrollment_id: uuid.UUID
    # Set when an admin chose the teacher; None lets matching choose.
    teacher_id: uuid.UUID | None = None


class TeacherAssignment(BaseModel):
    teacher_id: uuid.UUID | None  # None: nobody fits (or the chosen teacher is full) → waitlisted
    reason: str | None = None


class BookDemo(BaseModel):
    enrollment_id: uuid.UUID
    # After a no-show: the missed demo, marked no_show while its replacement is booked.
    replacing_lesson_id: uuid.UUID | None = None


class DemoBooking(BaseModel):
    lesson_id: uuid.UUID | None  # None: no slot within the search horizon
    starts_at: datetime | None = None
    ends_at: datetime | None = None


class RegularLessons(BaseModel):
    count: int
    skipped_conflicts: int
    first_starts_at: datetime | None
    last_ends_at: datetime | None


class MirrorState(BaseModel):
    enrollment_id: uuid.UUID
    state: str
    failure_reason: str | None = None


class BookNextSemester(BaseModel):
    """A returning student's weekly lesson at ``weekday`` and local ``local_time`` through the next semester."""

    enrollment_id: uuid.UUID
    next_semester_id: uuid.UUID
    weekday: int = Field(ge=0, le=6)
    local_time: time


class NextSemesterLessons(BaseModel):
    count: int
    skipped_conflicts: int
    first_starts_at: datetime | None
    last_ends_at: datetime | None
