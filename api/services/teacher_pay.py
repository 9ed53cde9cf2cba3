"""The teacher pay report for payroll (admins): recomputed from the lessons table on each request by the same
query and rule as the pay period's emailed report (``core/teacher_pay.py``, ``domain/teacher_pay.py``)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date

from sqlalchemy.ext.asyncio import AsyncSession

from api.schemas.teacher_pay import PayLineOut, PayReportOut
from api.services.attendance import check_period
from core.settings import Settings
from core.teacher_pay import report_for
from domain.attendance import hours


async def report(session: AsyncSession, settings: Settings, start: date, end: date) -> PayReportOut:
    check_period(settings, start, end, ("period_start", "period_end"))
    computed = await report_for(session, settings, start, end)
    return PayReportOut(
        period_start=start,
        period_end=end,
        currency=settings.currency,
        forfeited_lessons_paid=settings.teacher_pay_forfeited_lessons,
        paid_lessons=computed.paid_lessons,
        paid_minutes=computed.paid_minutes,
        hours=hours(computed.paid_minutes),
        amount_minor=computed.amount_minor,
        lines=[PayLineOut(**asdict(line), hours=line.hours) for line in computed.lines],
    )


CSV_HEADER = (
    "teacher_id",
    "display_name",
    "period_start",
    "period_end",
    "lessons_taught",
    "makeups_taught",
    "forfeited_paid",
    "paid_lessons",
    "paid_minutes",
    "hours",
    "hourly_rate_minor",
    "amount_minor",
    "currency",
)


def csv_rows(report: PayReportOut) -> list[tuple[object, ...]]:
    extra = {"period_start": report.period_start, "period_end": report.period_end, "currency": report.currency}
    return [tuple(extra.get(name, getattr(line, name, None)) for name in CSV_HEADER) for line in report.lines]
