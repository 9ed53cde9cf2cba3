"""``GET /api/v1/teacher-pay/report`` (and ``report.csv`` for payroll), admins only: each teacher's lessons and
hours taught in a period and their pay at their hourly rate (``api/services/teacher_pay.py``). Cedar does not pay
teachers. Periods are the school's local days ``[period_start, period_end)``."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import Depends, Query
from fastapi.responses import Response

from api.csv_export import csv_response
from api.deps import SessionDep, SettingsDep
from api.principal import AdminPrincipal
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.teacher_pay import PayReportOut
from api.services import teacher_pay as service

router = IndexedRouter(
    prefix="/api/v1/teacher-pay",
    tags=["teacher pay"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 422),
)

PeriodStart = Annotated[date, Query(description="the period's first day (the school's local date)")]
PeriodEnd = Annotated[date, Query(description="the first day after the period")]


@router.get("/report", response_model=PayReportOut, summary="Teachers' hours, lessons and pay over a period")
async def pay_report(
    session: SessionDep, settings: SettingsDep, _: AdminPrincipal, period_start: PeriodStart, period_end: PeriodEnd
) -> PayReportOut:
    return await service.report(session, settings, period_start, period_end)


@router.get(
    "/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "the report as CSV, one row per teacher"}},
    summary="The teacher pay report as CSV, for payroll",
)
async def pay_report_csv(
    session: SessionDep, settings: SettingsDep, _: AdminPrincipal, period_start: PeriodStart, period_end: PeriodEnd
) -> Response:
    report = await service.report(session, settings, period_start, period_end)
    return csv_response(f"teacher-pay-{period_start}-{period_end}.csv", service.CSV_HEADER, service.csv_rows(report))
