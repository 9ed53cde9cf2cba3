"""Attendance (``api/services/attendance.py``): ``POST /api/v1/lessons/{id}/attendance`` marks a lesson that has
started present, late, absent or excused (a teacher their own lessons, an admin any); ``GET
/api/v1/attendance/students`` and ``/teachers`` (and their ``.csv``) total a period's lessons per student or per
teacher, for staff (a teacher sees only their own lessons). Periods are the school's local days
``[period_start, period_end)``."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import Depends, Query
from fastapi.responses import Response

from api.csv_export import csv_response
from api.deps import SessionDep, SettingsDep, TemporalDep
from api.principal import StaffPrincipal
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.attendance import AttendanceMark, AttendanceReport
from api.schemas.common import error_responses
from api.schemas.lessons import LessonOut
from api.services import attendance as service
from core.settings import Settings
from models import Lesson

router = IndexedRouter(
    prefix="/api/v1",
    tags=["attendance"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 409, 422),
)

PeriodStart = Annotated[date, Query(description="the period's first day (the school's local date)")]
PeriodEnd = Annotated[date, Query(description="the first day after the period")]


@router.post("/lessons/{lesson_id}/attendance", response_model=LessonOut, summary="Mark a lesson's attendance")
async def mark_attendance(
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    principal: StaffPrincipal,
    lesson_id: uuid.UUID,
    body: AttendanceMark,
) -> Lesson:
    return await service.mark(session, temporal, settings, principal, lesson_id, body.attendance)


async def _report(
    session: SessionDep,
    settings: Settings,
    principal: StaffPrincipal,
    by: Literal["student", "teacher"],
    period_start: date,
    period_end: date,
    student_id: uuid.UUID | None,
    teacher_id: uuid.UUID | None,
) -> AttendanceReport:
    return await service.report(session, settings, principal, by, period_start, period_end, student_id, teacher_id)


@router.get("/attendance/students", response_model=AttendanceReport, summary="Attendance per student")
async def attendance_by_student(
    session: SessionDep,
    settings: SettingsDep,
    principal: StaffPrincipal,
    period_start: PeriodStart,
    period_end: PeriodEnd,
    student_id: uuid.UUID | None = None,
    teacher_id: uuid.UUID | None = None,
) -> AttendanceReport:
    return await _report(session, settings, principal, "student", period_start, period_end, student_id, teacher_id)


@router.get("/attendance/teachers", response_model=AttendanceReport, summary="Attendance per teacher")
async def attendance_by_teacher(
    session: SessionDep,
    settings: SettingsDep,
    principal: StaffPrincipal,
    period_start: PeriodStart,
    period_end: PeriodEnd,
    teacher_id: uuid.UUID | None = None,
) -> AttendanceReport:
    return await _report(session, settings, principal, "teacher", period_start, period_end, None, teacher_id)


CSV_RESPONSE: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}, "description": "the report as CSV"}}


@router.get(
    "/attendance/students.csv", response_class=Response, responses=CSV_RESPONSE, summary="Attendance per student (CSV)"
)
async def attendance_by_student_csv(
    session: SessionDep,
    settings: SettingsDep,
    principal: StaffPrincipal,
    period_start: PeriodStart,
    period_end: PeriodEnd,
    student_id: uuid.UUID | None = None,
    teacher_id: uuid.UUID | None = None,
) -> Response:
    report = await _report(session, settings, principal, "student", period_start, period_end, student_id, teacher_id)
    name = f"attendance-students-{period_start}-{period_end}.csv"
    return csv_response(name, service.CSV_HEADER, service.csv_rows(report))


@router.get(
    "/attendance/teachers.csv", response_class=Response, responses=CSV_RESPONSE, summary="Attendance per teacher (CSV)"
)
async def attendance_by_teacher_csv(
    session: SessionDep,
    settings: SettingsDep,
    principal: StaffPrincipal,
    period_start: PeriodStart,
    period_end: PeriodEnd,
    teacher_id: uuid.UUID | None = None,
) -> Response:
    report = await _report(session, settings, principal, "teacher", period_start, period_end, None, teacher_id)
    name = f"attendance-teachers-{period_start}-{period_end}.csv"
    return csv_response(name, service.CSV_HEADER, service.csv_rows(report))
