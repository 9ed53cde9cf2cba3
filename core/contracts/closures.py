"""The contract of a closure's workflow (``ClosureWorkflow``, ``closure-{closure id}``): the lessons already booked
on days the office closed afterwards are cancelled (each with a make-up credit, by the school's rule) or moved to
the teacher's nearest free slot, and each family and each teacher is told once.

The workflow starts after the closure's row committed. Each lesson is one transaction of its own (conditional on
the lesson still being scheduled on a closed day), so a retry finds what it did instead of doing it twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

CLOSURE_WORKFLOW = "ClosureWorkflow"
QUERY_OUTCOME = "outcome"

LessonAction = Literal["cancel", "move"]


class CreditPolicy(BaseModel):
    """The school's make-up policy when the closure was added (``domain.makeups.MakeupPolicy``'s fields)."""

    cancel_notice: timedelta
    credit_lifetime: timedelta
    reminder_before: timedelta
    booking_min_notice: timedelta
    booking_horizon: timedelta
    any_teacher: bool = False


class ClosureInput(BaseModel):
    closure_id: uuid.UUID
    lesson_action: LessonAction = "cancel"
    policy: CreditPolicy


class ClosureOutcome(BaseModel):
    """The workflow's query's answer and its result (also kept on the closure's row once done)."""

    lessons: int = 0
    cancelled: int = 0
    moved: int = 0
    credited: int = 0
    families_told: int = 0
    teachers_told: int = 0
    done: bool = False


# --- activities ----------------------------------------------------------------------------------------------


class ClosureRef(BaseModel):
    closure_id: uuid.UUID


class ClosureLesson(BaseModel):
    lesson_id: uuid.UUID
    starts_at: datetime


class ClosureLessons(BaseModel):
    """The scheduled lessons on the closure's days, earliest first."""

    lessons: list[ClosureLesson] = Field(default_factory=list)


class HandleLesson(BaseModel):
    closure_id: uuid.UUID
    lesson_id: uuid.UUID
    starts_at: datetime  # where it was when listed: a lesson found elsewhere was moved
    lesson_action: LessonAction
    policy: CreditPolicy


class LessonHandled(BaseModel):
    lesson_id: uuid.UUID
    parent_id: uuid.UUID
    teacher_id: uuid.UUID
    starts_at: datetime
    result: Literal["cancelled", "moved", "untouched"]
    new_starts_at: datetime | None = None
    credit_id: uuid.UUID | None = None
    credit_expires_at: datetime | None = None


class ClosureNoticesRequest(BaseModel):
    closure_id: uuid.UUID
    handled: list[LessonHandled]


class ClosureNotice(BaseModel):
    """One email: the recipient's id and their affected lessons, written in the school's local time."""

    to: Literal["parent", "teacher"]
    parent_id: uuid.UUID | None = None
    teacher_id: uuid.UUID | None = None
    days: str
    lines: str


class ClosureNotices(BaseModel):
    notices: list[ClosureNotice] = Field(default_factory=list)


class RecordOutcome(BaseModel):
    closure_id: uuid.UUID
    outcome: ClosureOutcome
