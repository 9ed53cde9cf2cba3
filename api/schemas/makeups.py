"""Request and response bodies for cancellations' outcomes and make-up credits."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from api.schemas.common import RequestModel, ResponseModel
from api.schemas.lessons import LessonOut, LessonStart, Minutes

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class LessonCancelled(LessonOut):
    """The cancelled lesson and what the cancellation means for the family (docs/lessons.md)."""

    outcome: Literal["credit", "forfeited"]
    credit_id: uuid.UUID | None = None
    credit_expires_at: datetime | None = None


class MakeupCreditOut(ResponseModel):
    id: uuid.UUID
    parent_id: uuid.UUID
    student_id: uuid.UUID
    teacher_id: uuid.UUID
    instrument: str
    lesson_minutes: int
    origin_lesson_id: uuid.UUID | None
    reason: str
    status: str
    expires_at: datetime
    used_lesson_id: uuid.UUID | None
    used_at: datetime | None
    created_at: datetime


class OpenSlotOut(ResponseModel):
    teacher_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime


class MakeupBooking(RequestModel):
    starts_at: LessonStart
    teacher_id: uuid.UUID | None = Field(default=None, description="defaults to the credit's teacher")


class CreditGrant(RequestModel):
    student_id: uuid.UUID
    teacher_id: uuid.UUID | None = Field(default=None, description="defaults to the student's latest teacher")
    minutes: Minutes = 30
    reason: Reason


class CreditExtend(RequestModel):
    days: int = Field(gt=0, le=365, description="days added to the credit's expiry")
    reason: Reason


class CreditVoid(RequestModel):
    reason: Reason


class CreditEventOut(ResponseModel):
    at: datetime
    kind: str
    detail: str


class CreditAnswer(ResponseModel):
    """The credit's workflow's answer to an update: its state after the change."""

    credit_id: uuid.UUID
    status: str
    expires_at: datetime
    used_lesson_id: uuid.UUID | None
    events: list[CreditEventOut]


class MakeupBooked(ResponseModel):
    lesson: LessonOut
    credit: CreditAnswer
