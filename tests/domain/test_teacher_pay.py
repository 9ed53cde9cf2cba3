"""The teacher pay rules without a server: periods, what is paid, each lesson once, rounding."""

from __future__ import annotations

import uuid
from datetime import date

from domain.attendance import hours
from domain.teacher_pay import PayLesson, PayPeriod, PayRate, last_complete_period, pay_amount, pay_report


def test_the_last_complete_period_of_each_kind() -> None:
    assert last_complete_period(date(2026, 12, 6), PayPeriod.semi_monthly) == (date(2026, 11, 16), date(2026, 12, 1))
    assert last_complete_period(date(2026, 12, 16), PayPeriod.semi_monthly) == (date(2026, 12, 1), date(2026, 12, 16))
    assert last_complete_period(date(2027, 1, 1), PayPeriod.semi_monthly) == (date(2026, 12, 16), date(2027, 1, 1))
    assert last_complete_period(date(2026, 3, 1), PayPeriod.monthly) == (date(2026, 2, 1), date(2026, 3, 1))
    assert last_complete_period(date(2026, 12, 9), PayPeriod.weekly) == (date(2026, 11, 30), date(2026, 12, 7))


def test_each_lesson_counts_once_and_the_rule_decides_forfeited_ones() -> None:
    teacher = uuid.uuid4()
    taught = PayLesson(uuid.uuid4(), teacher, "makeup", "completed", "late", 45)
    absent = PayLesson(uuid.uuid4(), teacher, "regular", "no_show", None, 30)
    excused = PayLesson(uuid.uuid4(), teacher, "regular", "no_show", "excused", 60)
    cancelled = PayLesson(uuid.uuid4(), teacher, "regular", "cancelled", None, 60)
    rates = [PayRate(teacher, "Tess", 5000)]
    lessons = [taught, taught, absent, excused, cancelled]

    [paid] = pay_report(date(2026, 1, 1), date(2026, 1, 16), lessons, rates, pay_forfeited=True).lines
    assert (paid.lessons_taught, paid.makeups_taught, paid.forfeited_paid, paid.paid_minutes) == (1, 1, 1, 75)
    assert paid.amount_minor == 6250
    [unpaid] = pay_report(date(2026, 1, 1), date(2026, 1, 16), lessons, rates, pay_forfeited=False).lines
    assert (unpaid.paid_lessons, unpaid.paid_minutes, unpaid.amount_minor) == (1, 45, 3750)


def test_pay_rounds_once_half_up_and_hours_read_as_payroll_wants() -> None:
    assert pay_amount(45, 3333) == 2500  # 2499.75
    assert pay_amount(20, 100) == 33  # 33.33
    assert pay_amount(30, 101) == 51  # 50.5 → 51
    assert (hours(90), hours(45), hours(0), hours(20)) == ("1.50", "0.75", "0.00", "0.33")
