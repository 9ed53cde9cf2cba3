"""Request and response bodies for teacher changes: substitutions and transfers."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from pydantic import model_validator

from api.schemas.common import RequestModel, ResponseModel


class SubstitutionCreate(RequestModel):
    """One lesson (``lesson_id``) or the regular teacher's lessons from ``from_date`` to ``to_date`` (local days,
    inclusive)."""

    substitute_teacher_id: uuid.UUID
    lesson_id: uuid.UUID | None = None
    from_date: date | None = None
    to_date: date | None = None

    @model_validator(mode="after")
    def _one_lesson_or_a_range(self) -> Any:
        ranged = self.from_date is not None or self.to_date is not None
        if self.lesson_id is not None and ranged:
            raise ValueError("give lesson_id or from_date and to_date, not both")
        if self.lesson_id is None and (self.from_date is None or self.to_date is None):
            raise ValueError("give lesson_id, or both from_date and to_date")
        if self.from_date is not None and self.to_date is not None and self.to_date < self.from_date:
            raise ValueError("to_date must not be before from_date")
        return self


class ChangedLessonOut(ResponseModel):
    id: uuid.UUID
    teacher_id: uuid.UUID
    regular_teacher_id: uuid.UUID | None = None
    starts_at: datetime
    ends_at: datetime
    status: str


class SubstitutionOut(ResponseModel):
    id: uuid.UUID
    regular_teacher_id: uuid.UUID
    substitute_teacher_id: uuid.UUID
    lesson_id: uuid.UUID | None
    from_date: date
    to_date: date
    created_at: datetime
    undone_at: datetime | None
    lessons: list[ChangedLessonOut]


class TransferCreate(RequestModel):
    teacher_id: uuid.UUID
    from_date: date


class TransferredLessonOut(ResponseModel):
    id: uuid.UUID
    previous_starts_at: datetime
    starts_at: datetime
    ends_at: datetime


class TransferOut(ResponseModel):
    enrollment_id: uuid.UUID
    previous_teacher_id: uuid.UUID
    teacher_id: uuid.UUID
    from_date: date
    lessons: list[TransferredLessonOut]
