"""Request and response bodies for attendance: marking a lesson, and totals over a period."""

from __future__ import annotations

import uuid
from datetime import date

from pydantic import Field

from api.schemas.common import RequestModel, ResponseModel
from domain.attendance import Attendance


class AttendanceMark(RequestModel):
    attendance: Attendance = Field(description="present or late complete the lesson; absent or excused: a no-show")


class AttendanceRow(ResponseModel):
    """One student's or teacher's lessons that started in the period, by attendance."""

    id: uuid.UUID
    name: str = Field(description="the student's first name, or the teacher's display name")
    lessons: int
    present: int
    late: int
    absent: int
    excused: int
    unmarked: int = Field(description="started but not marked yet (or still to come)")
    not_held: int = Field(description="cancelled or on hold")
    taught: int = Field(description="present or late")
    taught_hours: str
    attendance_rate_percent: int | None


class AttendanceReport(ResponseModel):
    period_start: date
    period_end: date = Field(description="the first day after the period")
    rows: list[AttendanceRow]
