"""Rebooking a lesson that cannot stay where it is (a closure added after booking, a transfer to another teacher):
which free slots of the teacher to try, nearest first. The database has the last word on each (the teachers'
exclusion constraint), so callers try these in order."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from domain.calendar import Closure, WeeklyWindow, local_to_utc, require_aware
from domain.slots import DEFAULT_STEP, iter_slots

__all__ = ["nearest_slots", "semester_of", "term_bounds"]

Interval = tuple[datetime, datetime]


def semester_of(semesters: Iterable[tuple[date, date]], day: date) -> tuple[date, date] | None:
    """The semester (first day, last day) holding local ``day``, or None between semesters."""
    for start, end in sorted(semesters):
        if start <= day <= end:
            return start, end
    return None


def term_bounds(first_day: date, last_day: date, tz: ZoneInfo) -> Interval:
    """The instants from the start of ``first_day`` to the end of ``last_day`` (local days)."""
    return local_to_utc(first_day, time(0), tz), local_to_utc(last_day + timedelta(days=1), time(0), tz)


def nearest_slots(
    availability: Iterable[WeeklyWindow],
    busy: Iterable[Interval],
    closures: Iterable[Closure],
    duration: timedelta,
    reference: datetime,
    earliest: datetime,
    latest: datetime,
    tz: ZoneInfo,
    step: timedelta = DEFAULT_STEP,
    limit: int | None = None,
) -> list[Interval]:
    """The teacher's free slots of ``duration`` in [earliest, latest], nearest to ``reference`` first (of two
    equally near, the earlier): inside the weekly ``availability``, on the ``step`` grid, not on a closed local
    day, overlapping no ``busy`` interval (the teacher's lessons and time off, and the student's lessons)."""
    require_aware(reference, "reference")
    if latest <= earliest:
        return []
    windows: Sequence[WeeklyWindow] = tuple(availability)
    slots = iter_slots(windows, windows, busy, closures, duration, earliest, latest, tz, step)
    ranked = sorted(slots, key=lambda slot: (abs(slot[0] - reference), slot[0]))
    return ranked if limit is None else ranked[:limit]
