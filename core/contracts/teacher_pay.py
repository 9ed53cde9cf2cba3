"""The contract of the pay period's workflow, which a Temporal Schedule starts (``workers/schedules.py``): it
reads the period's lessons and rates (an activity), computes the report (``domain/teacher_pay.py``) and emails the
office once per period. Models only gain fields with defaults, so running schedules keep working."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel

TEACHER_PAY_WORKFLOW = "TeacherPayWorkflow"
TEACHER_PAY_PERIOD_ACTIVITY = "teacher_pay_period"
TEACHER_PAY_TEMPLATE = "teacher_pay_report"


class PayReportRequest(BaseModel):
    """Empty from the schedule (the last complete period); an operator may name a period ``[start, end)``."""

    period_start: date | None = None
    period_end: date | None = None


class PayPeriodQuery(BaseModel):
    as_of: datetime
    period_start: date | None = None
    period_end: date | None = None


class PayLessonFact(BaseModel):
    lesson_id: uuid.UUID
    teacher_id: uuid.UUID
    kind: str
    status: str
    attendance: str | None = None
    minutes: int


class PayRateFact(BaseModel):
    teacher_id: uuid.UUID
    # A teacher's display name is public (the catalog); their email and legal name stay out of history.
    display_name: str
    hourly_rate_minor: int


class PayPeriodFacts(BaseModel):
    period_start: date
    period_end: date
    lessons: list[PayLessonFact]
    rates: list[PayRateFact]
    pay_forfeited: bool
    currency: str


class PayReportResult(BaseModel):
    period_start: date
    period_end: date
    teachers: int
    paid_lessons: int
    paid_minutes: int
    amount_minor: int
    already_sent: bool
