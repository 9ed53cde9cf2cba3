"""``/api/v1/reports``, the owner's reports (admins only), each as JSON and as CSV (``<name>.csv``): revenue by
month, instrument and teacher; receivables aged by days past due; active students and retention across
semesters; an attendance summary; open make-up credits by expiry month (``api/services/reports.py``). Periods
are the school's local days ``[period_start, period_end)``."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import Depends, Query
from fastapi.responses import Response

from api.csv_export import csv_response
from api.deps import SessionDep, SettingsDep
from api.principal import AdminPrincipal
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.reports import (
    AttendanceSummary,
    MakeupCreditsReport,
    ReceivablesReport,
    RetentionReport,
    RevenueReport,
)
from api.services import attendance as attendance_service
from api.services import reports as service

router = IndexedRouter(
    prefix="/api/v1/reports",
    tags=["reports"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 422),
)

PeriodStart = Annotated[date, Query(description="the period's first day (the school's local date)")]
PeriodEnd = Annotated[date, Query(description="the first day after the period")]
AsOf = Annotated[date | None, Query(description="the day the receivable is aged at, its end (default: today)")]
CSV: dict[int | str, dict[str, Any]] = {200: {"content": {"text/csv": {}}, "description": "the report as CSV"}}


@router.get("/revenue", response_model=RevenueReport, summary="Revenue by month, instrument and teacher")
async def revenue(
    session: SessionDep, settings: SettingsDep, _: AdminPrincipal, period_start: PeriodStart, period_end: PeriodEnd
) -> RevenueReport:
    return await service.revenue(session, settings, period_start, period_end)


@router.get("/revenue.csv", response_class=Response, responses=CSV, summary="Revenue (CSV)")
async def revenue_csv(
    session: SessionDep, settings: SettingsDep, _: AdminPrincipal, period_start: PeriodStart, period_end: PeriodEnd
) -> Response:
    report = await service.revenue(session, settings, period_start, period_end)
    name = f"revenue-{period_start}-{period_end}.csv"
    return csv_response(name, service.REVENUE_CSV_HEADER, service.revenue_csv_rows(report))


@router.get("/receivables", response_model=ReceivablesReport, summary="Receivables aged by days past due")
async def receivables(
    session: SessionDep, settings: SettingsDep, _: AdminPrincipal, as_of: AsOf = None
) -> ReceivablesReport:
    return await service.receivables(session, settings, as_of)


@router.get("/receivables.csv", response_class=Response, responses=CSV, summary="Receivables (CSV)")
async def receivables_csv(
    session: SessionDep, settings: SettingsDep, _: AdminPrincipal, as_of: AsOf = None
) -> Response:
    report = await service.receivables(session, settings, as_of)
    name = f"receivables-{report.as_of}.csv"
    return csv_response(name, service.RECEIVABLES_CSV_HEADER, service.receivables_csv_rows(report))


@router.get("/retention", response_model=RetentionReport, summary="Active students and retention by semester")
async def retention(
    session: SessionDep, settings: SettingsDep, _: AdminPrincipal, period_start: PeriodStart, period_end: PeriodEnd
) -> RetentionReport:
    return await service.retention_report(session, settings, period_start, period_end)


@router.get("/retention.csv", response_class=Response, responses=CSV, summary="Retention (CSV)")
async def retention_csv(
    session: SessionDep, settings: SettingsDep, _: AdminPrincipal, period_start: PeriodStart, period_end: PeriodEnd
) -> Response:
    report = await service.retention_report(session, settings, period_start, period_end)
    name = f"retention-{period_start}-{period_end}.csv"
    return csv_response(name, service.RETENTION_CSV_HEADER, service.retention_csv_rows(report))


@router.get("/attendance", response_model=AttendanceSummary, summary="Attendance over a period")
async def attendance(
    session: SessionDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    period_start: PeriodStart,
    period_end: PeriodEnd,
) -> AttendanceSummary:
    return await service.attendance_summary(session, settings, principal, period_start, period_end)


@router.get("/attendance.csv", response_class=Response, responses=CSV, summary="Attendance summary (CSV)")
async def attendance_csv(
    session: SessionDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
    period_start: PeriodStart,
    period_end: PeriodEnd,
) -> Response:
    report = await service.attendance_summary(session, settings, principal, period_start, period_end)
    name = f"attendance-summary-{period_start}-{period_end}.csv"
    return csv_response(name, attendance_service.CSV_HEADER, service.attendance_csv_rows(report))


@router.get("/makeup-credits", response_model=MakeupCreditsReport, summary="Open make-up credits by expiry month")
async def makeup_credits(session: SessionDep, settings: SettingsDep, _: AdminPrincipal) -> MakeupCreditsReport:
    return await service.makeup_credits(session, settings)


@router.get("/makeup-credits.csv", response_class=Response, responses=CSV, summary="Open make-up credits (CSV)")
async def makeup_credits_csv(session: SessionDep, settings: SettingsDep, _: AdminPrincipal) -> Response:
    report = await service.makeup_credits(session, settings)
    return csv_response("makeup-credits.csv", service.MAKEUP_CSV_HEADER, service.makeup_csv_rows(report))
