"""Response bodies of the teacher pay report (``domain/teacher_pay.py``)."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import Field

from api.schemas.common import ResponseModel


class PayLineOut(ResponseModel):
    teacher_id: uuid.UUID
    display_name: str
    lessons_taught: int = Field(description="completed lessons (present or late), make-ups included")
    makeups_taught: int
    forfeited_paid: int = Field(description="missed without an excuse, paid by the school's rule")
    paid_lessons: int
    paid_minutes: int
    hours: str
    hourly_rate_minor: int
    amount_minor: int


class PayReportOut(ResponseModel):
    period_start: date
    period_end: date = Field(description="the first day after the period")
    currency: str
    forfeited_lessons_paid: bool
    paid_lessons: int
    paid_minutes: int
    hours: str
    amount_minor: int
    lines: list[PayLineOut]
