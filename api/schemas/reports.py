"""Response bodies of the owner's reports (``api/services/reports.py``, arithmetic in ``domain/reports.py``)."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import Field

from api.schemas.attendance import AttendanceRow
from api.schemas.common import ResponseModel


class RevenueLine(ResponseModel):
    key: str | None = Field(description="the month (YYYY-MM), instrument code or teacher id; null: no enrollment")
    name: str = Field(description="what the key names (a teacher's display name; 'no instrument' for one-offs)")
    revenue_minor: int = Field(description="earned: credits to the revenue accounts")
    refunds_minor: int = Field(description="given back: debits to the contra-revenue (refunds) account")
    net_minor: int


class RevenueReport(ResponseModel):
    period_start: date
    period_end: date = Field(description="the first day after the period")
    currency: str
    revenue_minor: int
    refunds_minor: int
    net_minor: int = Field(description="equals minus the revenue and contra-revenue accounts' postings in the period")
    by_month: list[RevenueLine]
    by_instrument: list[RevenueLine]
    by_teacher: list[RevenueLine]


class AgingLine(ResponseModel):
    bucket: str = Field(description="days past due: 0-30, 31-60, 61-90, 90+")
    invoices: int
    amount_minor: int


class ReceivablesReport(ResponseModel):
    as_of: date
    currency: str
    total_minor: int = Field(description="the accounts receivable balance at the end of as_of")
    buckets: list[AgingLine]


class RetentionLine(ResponseModel):
    semester_id: uuid.UUID
    name: str
    start_date: date
    end_date: date
    active: int = Field(description="students with a lesson in the semester (not a demo, not cancelled)")
    new: int = Field(description="active, and not in the semester before")
    retained_next: int | None = Field(description="of those active, how many are active in the next semester")
    retention_rate_percent: int | None


class RetentionReport(ResponseModel):
    period_start: date = Field(description="semesters starting on or after this day")
    period_end: date = Field(description="… and before this one")
    semesters: list[RetentionLine]


class AttendanceSummary(ResponseModel):
    period_start: date
    period_end: date = Field(description="the first day after the period")
    totals: AttendanceRow = Field(description="every lesson of the period (id: the nil UUID)")
    teachers: list[AttendanceRow]


class CreditMonth(ResponseModel):
    month: str = Field(description="the month the credits expire in (school time), YYYY-MM")
    credits: int
    minutes: int


class MakeupCreditsReport(ResponseModel):
    credits: int
    minutes: int
    by_expiry_month: list[CreditMonth]
