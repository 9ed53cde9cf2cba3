"""Request and response bodies for lessons."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field

from api.schemas.common import LongText, PatchModel, RequestModel, ResponseModel, ShortText

Minutes = Annotated[int, Field(ge=15, le=240, description="the lesson's length in minutes")]


def _within_calendar(value: datetime) -> datetime:
    if not 2000 <= value.year <= 2100:
        raise ValueError("must be a date between the years 2000 and 2100")
    return value


LessonStart = Annotated[AwareDatetime, AfterValidator(_within_calendar)]


class LessonOut(ResponseModel):
    id: uuid.UUID
    kind: str
    status: str
    teacher_id: uuid.UUID
    student_id: uuid.UUID
    enrollment_id: uuid.UUID | None
    starts_at: datetime
    ends_at: datetime
    notes: str
    attendance: str | None = Field(description="present, late, absent or excused once marked (domain/attendance.py)")
    created_at: datetime
    updated_at: datetime


class LessonCreate(RequestModel):
    student_id: uuid.UUID
    teacher_id: uuid.UUID | None = Field(default=None, description="defaults to the calling teacher")
    # Demo lessons belong to the enrollment workflow, which books them itself.
    kind: Literal["regular", "makeup"] = "regular"
    starts_at: LessonStart
    minutes: Minutes
    enrollment_id: uuid.UUID | None = None
    notes: LongText = ""


class LessonReschedule(RequestModel):
    starts_at: LessonStart
    minutes: Minutes | None = Field(default=None, description="defaults to the lesson's current length")


class LessonCancel(RequestModel):
    reason: ShortText = ""


class LessonUpdate(PatchModel):
    notes: LongText | None = None
