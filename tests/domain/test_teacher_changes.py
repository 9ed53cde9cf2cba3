"""Choosing where a lesson goes when it cannot stay: the nearest free slot of the teacher, within the semester."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.calendar import Closure, WeeklyWindow
from domain.teacher_changes import nearest_slots, semester_of, term_bounds

TZ = ZoneInfo("America/Vancouver")
HALF_HOUR = timedelta(minutes=30)


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), tzinfo=TZ).astimezone(UTC)


MONDAY = date(2026, 12, 7)
WEEKDAYS_4_TO_6 = [WeeklyWindow(day, time(16), time(18)) for day in range(5)]


def test_after_a_closure_the_first_free_slot_after_it_comes_first_not_next_week() -> None:
    closure = Closure(MONDAY, MONDAY)
    lesson = _at(MONDAY, 16)
    earliest, latest = _at(MONDAY + timedelta(days=1), 0), _at(date(2026, 12, 31), 0)
    busy = [(_at(MONDAY + timedelta(days=1), 16), _at(MONDAY + timedelta(days=1), 17))]
    slots = nearest_slots(WEEKDAYS_4_TO_6, busy, [closure], HALF_HOUR, lesson, earliest, latest, TZ, limit=3)
    # Tuesday 16:00-17:00 is taken: 17:00 that Tuesday is the nearest, not Monday a week later.
    assert slots[0] == (_at(MONDAY + timedelta(days=1), 17), _at(MONDAY + timedelta(days=1), 17, 30))
    assert all(start >= earliest for start, _ in slots)


def test_closed_days_weekends_and_the_student_busy_time_are_skipped() -> None:
    tuesday, wednesday = MONDAY + timedelta(days=1), MONDAY + timedelta(days=2)
    closures = [Closure(MONDAY, tuesday)]
    student_busy = [(_at(wednesday, 16), _at(wednesday, 18))]
    slots = nearest_slots(
        WEEKDAYS_4_TO_6,
        student_busy,
        closures,
        HALF_HOUR,
        _at(MONDAY, 16),
        _at(MONDAY, 0),
        _at(MONDAY, 0) + timedelta(days=14),
        TZ,
    )
    assert slots[0][0] == _at(MONDAY + timedelta(days=3), 16)
    assert not any(start.astimezone(TZ).date() in (MONDAY, tuesday) for start, _ in slots)
    assert not any(start.astimezone(TZ).weekday() >= 5 for start, _ in slots)
    assert not any(start < _at(wednesday, 18) and start >= _at(wednesday, 16) for start, _ in slots)


def test_the_same_time_comes_first_when_free_and_nearest_either_side_otherwise() -> None:
    reference = _at(MONDAY, 16, 30)
    window = _at(MONDAY, 0), _at(MONDAY, 0) + timedelta(days=7)
    free = nearest_slots(WEEKDAYS_4_TO_6, [], [], HALF_HOUR, reference, *window, TZ, limit=1)
    assert free == [(reference, reference + HALF_HOUR)]
    taken = [(reference, reference + HALF_HOUR)]
    around = nearest_slots(WEEKDAYS_4_TO_6, taken, [], HALF_HOUR, reference, *window, TZ, limit=2)
    # 16:00 and 17:00 are as near; the earlier comes first.
    assert [start for start, _ in around] == [_at(MONDAY, 16), _at(MONDAY, 17)]


def test_no_slot_in_an_empty_or_fully_busy_window() -> None:
    window = _at(MONDAY, 0), _at(MONDAY, 0) + timedelta(days=1)
    assert nearest_slots(WEEKDAYS_4_TO_6, [], [], HALF_HOUR, window[0], window[1], window[0], TZ) == []
    all_day = [(window[0], window[1])]
    assert nearest_slots(WEEKDAYS_4_TO_6, all_day, [], HALF_HOUR, window[0], *window, TZ) == []


def test_the_semester_of_a_day_and_its_bounds() -> None:
    semesters = [(date(2027, 1, 4), date(2027, 6, 25)), (date(2026, 9, 1), date(2026, 12, 18))]
    assert semester_of(semesters, MONDAY) == (date(2026, 9, 1), date(2026, 12, 18))
    assert semester_of(semesters, date(2026, 12, 25)) is None
    start, end = term_bounds(date(2026, 9, 1), date(2026, 12, 18), TZ)
    assert (start, end) == (_at(date(2026, 9, 1), 0), _at(date(2026, 12, 19), 0))
