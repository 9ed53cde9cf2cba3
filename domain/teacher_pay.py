"""Teacher pay: the hours and lessons each teacher taught in a pay period, at their hourly rate.

Cedar does not pay teachers: it tells the office (and payroll, as CSV) what each one earned, recomputed from the
lessons table whenever asked, so nothing here is stored. What counts:

* a taught lesson (completed: present, late, or completed before attendance existed), of any kind, make-ups too;
* a forfeited one (the student did not come without an excuse: absent, or a no-show) only when the school's rule
  ``teacher_pay_forfeited_lessons`` says the teacher is paid for the time they kept free;
* never an excused absence (the family's make-up is paid when it is taught), a cancelled lesson, one on hold for
  billing, or one nobody marked yet.

Pay is each teacher's paid minutes times their rate, rounded once to the minor unit (half up) on the total.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from domain.attendance import Outcome, hours, outcome
from domain.money import format_money


class PayPeriod(StrEnum):
    semi_monthly = "semi_monthly"  # the 1st to the 15th, the 16th to the month's end
    monthly = "monthly"
    weekly = "weekly"  # Monday to Sunday


@dataclass(frozen=True)
class PayLesson:
    lesson_id: uuid.UUID
    teacher_id: uuid.UUID
    kind: str
    status: str
    attendance: str | None
    minutes: int


@dataclass(frozen=True)
class PayRate:
    teacher_id: uuid.UUID
    display_name: str
    hourly_rate_minor: int


@dataclass(frozen=True)
class PayLine:
    teacher_id: uuid.UUID
    display_name: str
    lessons_taught: int
    makeups_taught: int
    forfeited_paid: int
    paid_lessons: int
    paid_minutes: int
    hourly_rate_minor: int
    amount_minor: int

    @property
    def hours(self) -> str:
        return hours(self.paid_minutes)


@dataclass(frozen=True)
class PayReport:
    period_start: date
    period_end: date  # exclusive
    lines: list[PayLine]

    @property
    def paid_minutes(self) -> int:
        return sum(line.paid_minutes for line in self.lines)

    @property
    def paid_lessons(self) -> int:
        return sum(line.paid_lessons for line in self.lines)

    @property
    def amount_minor(self) -> int:
        return sum(line.amount_minor for line in self.lines)


def pay_amount(minutes: int, hourly_rate_minor: int) -> int:
    return (minutes * hourly_rate_minor * 2 + 60) // 120


def is_paid(status: str, attendance: str | None, pay_forfeited: bool) -> bool:
    result = outcome(status, attendance)
    return result == Outcome.taught or (result == Outcome.forfeited and pay_forfeited)


def pay_report(
    period_start: date,
    period_end: date,
    lessons: Iterable[PayLesson],
    rates: Iterable[PayRate],
    pay_forfeited: bool,
) -> PayReport:
    """One line per teacher with a paid lesson (or a rate given), each lesson counted once, by display name."""
    by_teacher = {rate.teacher_id: rate for rate in rates}
    seen: set[uuid.UUID] = set()
    counts: dict[uuid.UUID, list[int]] = {teacher_id: [0, 0, 0, 0] for teacher_id in by_teacher}
    for lesson in lessons:
        if lesson.lesson_id in seen or not is_paid(lesson.status, lesson.attendance, pay_forfeited):
            continue
        seen.add(lesson.lesson_id)
        taught, makeups, forfeited, minutes = counts.setdefault(lesson.teacher_id, [0, 0, 0, 0])
        if outcome(lesson.status, lesson.attendance) == Outcome.taught:
            taught += 1
            makeups += lesson.kind == "makeup"
        else:
            forfeited += 1
        counts[lesson.teacher_id] = [taught, makeups, forfeited, minutes + lesson.minutes]
    lines = []
    for teacher_id, (taught, makeups, forfeited, minutes) in counts.items():
        rate = by_teacher.get(teacher_id, PayRate(teacher_id, "", 0))
        lines.append(
            PayLine(
                teacher_id=teacher_id,
                display_name=rate.display_name,
                lessons_taught=taught,
                makeups_taught=makeups,
                forfeited_paid=forfeited,
                paid_lessons=taught + forfeited,
                paid_minutes=minutes,
                hourly_rate_minor=rate.hourly_rate_minor,
                amount_minor=pay_amount(minutes, rate.hourly_rate_minor),
            )
        )
    lines.sort(key=lambda line: (line.display_name.lower(), str(line.teacher_id)))
    return PayReport(period_start, period_end, lines)


def last_complete_period(today: date, period: PayPeriod) -> tuple[date, date]:
    """The latest whole pay period ending on or before ``today`` (a local date): ``[start, end)``."""
    if period == PayPeriod.weekly:
        end = today - timedelta(days=today.weekday())
        return end - timedelta(days=7), end
    first = today.replace(day=1)
    previous_month = (first - timedelta(days=1)).replace(day=1)
    if period == PayPeriod.monthly:
        return previous_month, first
    if today.day > 15:
        return first, first.replace(day=16)
    return previous_month.replace(day=16), first


def period_label(period_start: date, period_end: date) -> str:
    last = period_end - timedelta(days=1)
    return f"{period_start.isoformat()} to {last.isoformat()}"


def report_table(report: PayReport, currency: str) -> str:
    """The report as a fixed-width table for the office's email."""
    header = ("Teacher", "Lessons", "Make-ups", "Forfeited", "Hours", "Rate/h", "Pay")
    rows = [
        (
            line.display_name or str(line.teacher_id),
            str(line.paid_lessons - line.forfeited_paid),
            str(line.makeups_taught),
            str(line.forfeited_paid),
            line.hours,
            format_money(line.hourly_rate_minor, currency),
            format_money(line.amount_minor, currency),
        )
        for line in report.lines
    ]
    rows.append(
        (
            "Total",
            str(sum(line.lessons_taught for line in report.lines)),
            str(sum(line.makeups_taught for line in report.lines)),
            str(sum(line.forfeited_paid for line in report.lines)),
            hours(report.paid_minutes),
            "",
            format_money(report.amount_minor, currency),
        )
    )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join(
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in [header, *rows]
    )
