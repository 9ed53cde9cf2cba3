"""The contracts of a make-up credit's workflow (``MakeupCreditWorkflow``, one per credit, ``makeup-credit-{id}``)
and of a cancelled lesson's notices (``LessonCancellationWorkflow``, ``lesson-cancellation-{lesson id}``).

The ``makeup_credits`` row decides every race (conditional updates, unique keys); the credit's workflow keeps its
timers (the reminder before expiry, the expiry) and records what happened: the API tells it of a booking
(``record_use``), and the office's ``extend`` and ``void`` are updates whose validators refuse before anything
reaches history and whose answer the API returns.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field

MAKEUP_CREDIT_WORKFLOW = "MakeupCreditWorkflow"
LESSON_CANCELLATION_WORKFLOW = "LessonCancellationWorkflow"

UPDATE_RECORD_USE = "record_use"
UPDATE_EXTEND = "extend"
UPDATE_VOID = "void"
QUERY_STATE = "state"


class CreditEvent(BaseModel):
    """A line of the credit's timeline (ids and states only)."""

    at: datetime
    kind: str
    detail: str = ""


class MakeupCreditState(BaseModel):
    """What the workflow knows; its query's and its updates' answer, and its result."""

    credit_id: uuid.UUID
    status: str = "available"
    expires_at: datetime
    used_lesson_id: uuid.UUID | None = None
    reminded_for: datetime | None = None  # the expiry the last reminder was sent for
    events: list[CreditEvent] = Field(default_factory=list)


class MakeupCreditInput(BaseModel):
    credit_id: uuid.UUID
    parent_id: uuid.UUID
    teacher_id: uuid.UUID
    expires_at: datetime
    reminder_before: timedelta
    # Tell the family at once (a credit the office granted; a cancellation's credit is told by its notice).
    announce: bool = False


class RecordUse(BaseModel):
    """API → workflow, after the booking committed: the credit paid for this make-up lesson."""

    lesson_id: uuid.UUID
    used_at: datetime


class ExtendCredit(BaseModel):
    by: timedelta
    reason: str = Field(min_length=1, max_length=500)
    actor_user_id: uuid.UUID | None = None


class VoidCredit(BaseModel):
    reason: str = Field(min_length=1, max_length=500)
    actor_user_id: uuid.UUID | None = None


# --- activities ----------------------------------------------------------------------------------------------


class CreditRef(BaseModel):
    credit_id: uuid.UUID


class CreditChange(BaseModel):
    """A conditional change of an available credit's row: extend by ``by``, or void."""

    credit_id: uuid.UUID
    action: Literal["extend", "void", "expire"]
    by: timedelta | None = None


class CreditRow(BaseModel):
    """The row after a change (or as it is, when the change did not apply)."""

    credit_id: uuid.UUID
    status: str
    expires_at: datetime
    used_lesson_id: uuid.UUID | None = None
    changed: bool


class LessonCancellationInput(BaseModel):
    """The notices of one cancelled lesson: its outcome, told to the family and to the teacher once each."""

    lesson_id: uuid.UUID
    parent_id: uuid.UUID
    teacher_id: uuid.UUID
    starts_at: datetime
    cancelled_by: Literal["family", "teacher", "school"]
    outcome: Literal["credit", "forfeited"]
    credit_id: uuid.UUID | None = None
    credit_expires_at: datetime | None = None
    # An excused absence (a family absence the school accepted), told in its own words rather than as a
    # cancellation; the default keeps earlier histories replaying as they ran.
    excused: bool = False
