"""The owner's reports (admins): revenue from the ledger by month, instrument and teacher; receivables aged by
days past due (they sum to the ledger's receivable); active students and retention across semesters; an
attendance summary; open make-up credits by expiry month. Recomputed on each request; arithmetic in
``domain/reports.py``, SQL in ``api/repositories/reports.py``."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.principal import Principal
from api.repositories import attendance as attendance_repository
from api.repositories import reports as repository
from api.repositories.base import invalid
from api.schemas.attendance import AttendanceReport, AttendanceRow
from api.schemas.reports import (
    AgingLine,
    AttendanceSummary,
    CreditMonth,
    MakeupCreditsReport,
    ReceivablesReport,
    RetentionLine,
    RetentionReport,
    RevenueLine,
    RevenueReport,
)
from api.services import attendance
from api.services.attendance import check_period
from core.settings import Settings
from domain.attendance import AttendedLesson, hours, tally
from domain.ledger import AccountType, EntryKind
from domain.reports import (
    Receivable,
    RevenueItem,
    RevenueTotals,
    age_receivables,
    count_by_month,
    group_revenue,
    retention,
    source_of,
)

NO_INSTRUMENT = "no instrument"
NO_TEACHER = "no teacher"
RETENTION_MAX_DAYS = 3660  # ten years of semesters
EVERYONE = uuid.UUID(int=0)


def _midnight(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, time(0), tzinfo=settings.timezone)


def _uuid(text: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(text)
    except ValueError:
        return None


def _line(key: str | None, name: str, totals: RevenueTotals) -> RevenueLine:
    return RevenueLine(
        key=key,
        name=name,
        revenue_minor=totals.revenue_minor,
        refunds_minor=totals.refunds_minor,
        net_minor=totals.net_minor,
    )


async def revenue(session: AsyncSession, settings: Settings, start: date, end: date) -> RevenueReport:
    """Revenue recognized in the period (lesson revenue as lessons are given) less refunds (contra-revenue), each
    posting tied to its enrollment: a lesson's through the lesson, a refund's through payment → invoice →
    subscription. What has no enrollment (one-off charges) is the ``null`` instrument and teacher."""
    check_period(settings, start, end, ("period_start", "period_end"))
    rows = await repository.revenue_postings(session, _midnight(start, settings), _midnight(end, settings))
    sources = [(row, *source_of(row.idempotency_key)) for row in rows]
    lesson_ids = {_uuid(s) for _, kind, s, _ in sources if kind == EntryKind.LESSON_COMPLETED}
    lessons = await repository.lesson_enrollments(session, {i for i in lesson_ids if i is not None})
    refunds = await repository.refund_enrollments(
        session, {s for _, kind, s, _ in sources if kind == EntryKind.REFUND_ISSUED}
    )
    items: list[RevenueItem] = []
    for row, kind, source, _ in sources:
        lesson_id = _uuid(source) if kind == EntryKind.LESSON_COMPLETED else None
        tie = lessons.get(lesson_id) if lesson_id is not None else refunds.get(source)
        instrument, teacher_id = tie if tie is not None else (None, None)
        amount = int(row.amount_minor)
        earned, refunded = (-amount, 0) if row.type == AccountType.REVENUE else (0, amount)
        items.append(RevenueItem(row.occurred_at, earned, refunded, instrument, teacher_id))
    grouped = group_revenue(items, settings.timezone)
    names = await repository.teacher_names(session, {t for t in grouped.by_teacher if t is not None})
    by_instrument = sorted(grouped.by_instrument.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))
    by_teacher = sorted(
        grouped.by_teacher.items(), key=lambda kv: (kv[0] is None, names.get(kv[0], "") if kv[0] else "")
    )
    return RevenueReport(
        period_start=start,
        period_end=end,
        currency=settings.currency,
        revenue_minor=grouped.total.revenue_minor,
        refunds_minor=grouped.total.refunds_minor,
        net_minor=grouped.total.net_minor,
        by_month=[_line(month, month, totals) for month, totals in grouped.by_month.items()],
        by_instrument=[_line(key, key or NO_INSTRUMENT, totals) for key, totals in by_instrument],
        by_teacher=[
            _line(str(key) if key else None, names.get(key, "") if key else NO_TEACHER, totals)
            for key, totals in by_teacher
        ],
    )


REVENUE_CSV_HEADER = ("grouping", "key", "name", "revenue_minor", "refunds_minor", "net_minor", "currency")


def revenue_csv_rows(report: RevenueReport) -> list[tuple[object, ...]]:
    total = ("total", "", "total", report.revenue_minor, report.refunds_minor, report.net_minor, report.currency)
    rows: list[tuple[object, ...]] = [total]
    currency = report.currency
    for grouping, lines in (
        ("month", report.by_month),
        ("instrument", report.by_instrument),
        ("teacher", report.by_teacher),
    ):
        rows += [
            (grouping, line.key or "", line.name, line.revenue_minor, line.refunds_minor, line.net_minor, currency)
            for line in lines
        ]
    return rows


async def receivables(session: AsyncSession, settings: Settings, as_of: date | None) -> ReceivablesReport:
    """The receivable at the end of ``as_of`` (default: today), per invoice, aged from the day the invoice was
    finalized (Cedar's invoices are due at once: they are charged automatically). A payment counts against the
    invoice it paid; a posting tied to no invoice is aged from its own day."""
    today = datetime.now(settings.timezone).date()
    as_of = today if as_of is None else as_of
    if as_of > today:
        raise invalid("as_of", "cannot be in the future")
    rows = await repository.receivable_postings(session, _midnight(as_of + timedelta(days=1), settings))
    sources = [(row, *source_of(row.idempotency_key)) for row in rows]
    charges = await repository.charge_invoices(
        session, {s for _, kind, s, _ in sources if kind == EntryKind.PAYMENT_RECEIVED}
    )
    invoices: dict[str, dict[str, Any]] = {}
    for row, kind, source, sign in sources:
        invoice = (
            source
            if kind in (EntryKind.INVOICE_FINALIZED, EntryKind.BAD_DEBT_WRITTEN_OFF)
            else charges.get(source)
            if kind == EntryKind.PAYMENT_RECEIVED
            else None
        )
        day = row.occurred_at.astimezone(settings.timezone).date()
        item = invoices.setdefault(invoice or row.idempotency_key, {"due": None, "first": day, "amount": 0})
        item["amount"] += int(row.amount_minor)
        item["first"] = min(item["first"], day)
        if kind == EntryKind.INVOICE_FINALIZED and sign == 1:
            item["due"] = day if item["due"] is None else min(item["due"], day)
    buckets = age_receivables(
        (Receivable(item["due"] or item["first"], item["amount"]) for item in invoices.values()), as_of
    )
    return ReceivablesReport(
        as_of=as_of,
        currency=settings.currency,
        total_minor=sum(b.amount_minor for b in buckets),
        buckets=[AgingLine(bucket=b.bucket, invoices=b.items, amount_minor=b.amount_minor) for b in buckets],
    )


RECEIVABLES_CSV_HEADER = ("as_of", "bucket", "invoices", "amount_minor", "currency")


def receivables_csv_rows(report: ReceivablesReport) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = [
        (report.as_of, b.bucket, b.invoices, b.amount_minor, report.currency) for b in report.buckets
    ]
    rows.append((report.as_of, "total", sum(b.invoices for b in report.buckets), report.total_minor, report.currency))
    return rows


async def retention_report(session: AsyncSession, settings: Settings, start: date, end: date) -> RetentionReport:
    """The semesters starting in ``[start, end)``, in order: active students, new ones, and how many of them are
    active in the next semester (the last one has no next: null)."""
    if end <= start:
        raise invalid("period_end", "must be after period_start")
    if (end - start).days > RETENTION_MAX_DAYS:
        raise invalid("period_end", f"a retention report covers at most {RETENTION_MAX_DAYS} days")
    semesters = await repository.semesters_starting(session, start, end)
    active = await repository.active_students(session, [s.id for s in semesters], settings.school_timezone)
    rows = retention([(str(s.id), frozenset(active.get(s.id, set()))) for s in semesters])
    return RetentionReport(
        period_start=start,
        period_end=end,
        semesters=[
            RetentionLine(
                semester_id=s.id,
                name=s.name,
                start_date=s.start_date,
                end_date=s.end_date,
                active=row.active,
                new=row.new,
                retained_next=row.retained_next,
                retention_rate_percent=row.retention_rate_percent,
            )
            for s, row in zip(semesters, rows, strict=True)
        ],
    )


RETENTION_CSV_HEADER = (
    "semester_id",
    "name",
    "start_date",
    "end_date",
    "active",
    "new",
    "retained_next",
    "retention_rate_percent",
)


def retention_csv_rows(report: RetentionReport) -> list[tuple[object, ...]]:
    return [tuple(getattr(line, name) for name in RETENTION_CSV_HEADER) for line in report.semesters]


async def attendance_summary(
    session: AsyncSession, settings: Settings, principal: Principal, start: date, end: date
) -> AttendanceSummary:
    """The attendance report per teacher (``api/services/attendance.py``) and its totals over every lesson."""
    per_teacher = await attendance.report(session, settings, principal, "teacher", start, end)
    lessons = await attendance_repository.lessons_in(
        session, principal, _midnight(start, settings), _midnight(end, settings), None, None
    )
    total = tally(
        AttendedLesson(EVERYONE, row.status, row.attendance, (row.ends_at - row.starts_at) // timedelta(minutes=1))
        for row in lessons
    ).get(EVERYONE)
    totals = AttendanceRow(
        id=EVERYONE,
        name="total",
        lessons=total.lessons if total else 0,
        present=total.present if total else 0,
        late=total.late if total else 0,
        absent=total.absent if total else 0,
        excused=total.excused if total else 0,
        unmarked=total.unmarked if total else 0,
        not_held=total.not_held if total else 0,
        taught=total.taught if total else 0,
        taught_hours=hours(total.taught_minutes if total else 0),
        attendance_rate_percent=total.attendance_rate_percent if total else None,
    )
    return AttendanceSummary(period_start=start, period_end=end, totals=totals, teachers=per_teacher.rows)


def attendance_csv_rows(report: AttendanceSummary) -> list[tuple[object, ...]]:
    rows = [*report.teachers, report.totals]
    as_report = AttendanceReport(period_start=report.period_start, period_end=report.period_end, rows=rows)
    return attendance.csv_rows(as_report)


async def makeup_credits(session: AsyncSession, settings: Settings) -> MakeupCreditsReport:
    """Credits still available (neither used, expired nor void), by the month they expire in."""
    rows = await repository.open_credits(session)
    months = count_by_month(((row.expires_at, int(row.lesson_minutes)) for row in rows), settings.timezone)
    return MakeupCreditsReport(
        credits=sum(count for count, _ in months.values()),
        minutes=sum(minutes for _, minutes in months.values()),
        by_expiry_month=[CreditMonth(month=m, credits=c, minutes=n) for m, (c, n) in months.items()],
    )


MAKEUP_CSV_HEADER = ("expiry_month", "credits", "minutes")


def makeup_csv_rows(report: MakeupCreditsReport) -> list[tuple[object, ...]]:
    rows: list[tuple[object, ...]] = [(m.month, m.credits, m.minutes) for m in report.by_expiry_month]
    rows.append(("total", report.credits, report.minutes))
    return rows
