from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.billing_setup import awaits_card, billing_starts_at
from domain.calendar import local_to_utc

TZ = ZoneInfo("America/Vancouver")


def at(day: date, hour: int = 16) -> datetime:
    return local_to_utc(day, time(hour), TZ)


def weekly(first: date, weeks: int) -> list[datetime]:
    return [at(first + timedelta(weeks=n)) for n in range(weeks)]


def test_a_monthly_plan_starts_on_the_first_of_the_next_month_holding_lessons() -> None:
    lessons = weekly(date(2026, 11, 3), 10)  # Tuesdays from 3 November into January
    now = at(date(2026, 11, 20), 9)
    assert billing_starts_at(lessons, now, "month", TZ) == local_to_utc(date(2026, 12, 1), time(0), TZ)


def test_a_weekly_plan_starts_on_the_next_monday_and_skips_weeks_without_lessons() -> None:
    lessons = [at(date(2026, 11, 17)), at(date(2026, 12, 1)), at(date(2026, 12, 8))]  # no lesson the week of 23rd
    now = at(date(2026, 11, 18), 9)  # a Wednesday: the week's lesson is over
    assert billing_starts_at(lessons, now, "week", TZ) == local_to_utc(date(2026, 11, 30), time(0), TZ)


def test_lessons_left_in_the_period_in_progress_are_not_billed() -> None:
    now = at(date(2026, 11, 2), 9)  # Monday: Tuesday's lesson is ahead but in this week
    lessons = [at(date(2026, 11, 3))]
    assert billing_starts_at(lessons, now, "week", TZ) is None
    assert billing_starts_at([*lessons, at(date(2026, 11, 10))], now, "week", TZ) == local_to_utc(
        date(2026, 11, 9), time(0), TZ
    )


def test_past_lessons_are_never_billed() -> None:
    lessons = weekly(date(2026, 9, 1), 8)  # September and October
    assert billing_starts_at(lessons, at(date(2026, 11, 2)), "month", TZ) is None


def test_now_must_be_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        billing_starts_at([], datetime(2026, 11, 2), "month", TZ)


def test_only_an_active_imported_enrollment_without_a_card_awaits_one() -> None:
    imported = {"source": "import"}
    assert awaits_card("active", imported, "")
    assert not awaits_card("active", imported, "pm_123")
    assert not awaits_card("cancelled", imported, "")
    assert not awaits_card("active", {"source": "web"}, "")
    assert not awaits_card("active", {}, "")
