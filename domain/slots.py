"""Finding demo-lesson slots: where the teacher's week, the parent's week and the calendar all agree."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

from domain.calendar import Closure, WeeklyWindow, genuine_zone, is_closed, local_to_utc, require_aware

__all__ = [
    "DEFAULT_STEP",
    "find_slots",
    "first_slot",
    "iter_slots",
    "merge_windows",
    "overlapping_windows",
    "overlaps",
]

DEFAULT_STEP = timedelta(minutes=15)
_DAY = timedelta(days=1)

Interval = tuple[datetime, datetime]


def overlaps(a_start: datetime, a_end: datetime, b_start: datetime, b_end: datetime) -> bool:
    """Half-open overlap: intervals that only touch (one ends when the other starts) do not overlap."""
    return a_start < b_end and b_start < a_end


def merge_windows(windows: Iterable[WeeklyWindow]) -> list[WeeklyWindow]:
    """The same weekly time as a sorted list of disjoint windows (overlapping or touching ones joined)."""
    merged: list[WeeklyWindow] = []
    for window in sorted(windows):
        last = merged[-1] if merged else None
        if last is not None and last.weekday == window.weekday and window.start <= last.end:
            if window.end > last.end:
                merged[-1] = WeeklyWindow(last.weekday, last.start, window.end)
        else:
            merged.append(window)
    return merged


def overlapping_windows(a: Iterable[WeeklyWindow], b: Iterable[WeeklyWindow]) -> list[WeeklyWindow]:
    """The weekly time inside both ``a`` and ``b``: sorted, disjoint windows (empty when they never meet).

    Windows that only touch (one ends at 16:00, the other starts at 16:00) share no time.
    """
    b_merged = merge_windows(b)
    common: list[WeeklyWindow] = []
    for left in merge_windows(a):
        for right in b_merged:
            if right.weekday != left.weekday:
                continue
            start, end = max(left.start, right.start), min(left.end, right.end)
            if start < end:
                common.append(WeeklyWindow(left.weekday, start, end))
    return sorted(common)


def _since_midnight(at: time) -> timedelta:
    return timedelta(hours=at.hour, minutes=at.minute, seconds=at.second, microseconds=at.microsecond)


def _local_starts(window: WeeklyWindow, duration: timedelta, step: timedelta) -> Iterator[time]:
    """Wall-clock starts inside ``window`` on the ``step`` grid counted from midnight (15 min → :00, :15…).

    Aligning to midnight rather than to the window start keeps proposed times round for people.
    """
    first = -(-_since_midnight(window.start) // step) * step  # ceiling to the grid
    offset = first
    while offset + duration <= _since_midnight(window.end):
        yield (datetime.min + offset).time()
        offset += step


def _is_free(start: datetime, end: datetime, busy: Sequence[Interval]) -> bool:
    return not any(overlaps(start, end, busy_start, busy_end) for busy_start, busy_end in busy)


def iter_slots(
    teacher_availability: Iterable[WeeklyWindow],
    preferred: Iterable[WeeklyWindow],
    busy: Iterable[Interval],
    closures: Iterable[Closure],
    duration: timedelta,
    earliest: datetime,
    horizon_end: datetime,
    tz: ZoneInfo,
    step: timedelta = DEFAULT_STEP,
) -> Iterator[Interval]:
    """Lazily yield the slots of :func:`find_slots`, in the same order."""
    if duration <= timedelta(0) or step <= timedelta(0):
        raise ValueError("duration and step must be positive")
    require_aware(earliest, "earliest")
    require_aware(horizon_end, "horizon_end")
    tz = genuine_zone(tz)
    busy_intervals = tuple(busy)
    for busy_start, busy_end in busy_intervals:
        require_aware(busy_start, "busy start")
        require_aware(busy_end, "busy end")
    closure_list = tuple(closures)
    windows = overlapping_windows(teacher_availability, preferred)
    if not windows:
        return
    day: date = earliest.astimezone(tz).date()
    last_day: date = horizon_end.astimezone(tz).date()
    while day <= last_day:
        if not is_closed(day, closure_list):
            for window in windows:
                if window.weekday != day.weekday():
                    continue
                for local_start in _local_starts(window, duration, step):
                    start = local_to_utc(day, local_start, tz)
                    # A start inside the spring-forward gap has no wall-clock reading; skip it.
                    if start.astimezone(tz).replace(tzinfo=None) != datetime.combine(day, local_start):
                        continue
                    end = start + duration
                    if start < earliest or end > horizon_end:
                        continue
                    if _is_free(start, end, busy_intervals):
                        yield (start, end)
        day += _DAY


def find_slots(
    teacher_availability: Iterable[WeeklyWindow],
    preferred: Iterable[WeeklyWindow],
    busy: Iterable[Interval],
    closures: Iterable[Closure],
    duration: timedelta,
    earliest: datetime,
    horizon_end: datetime,
    tz: ZoneInfo,
    step: timedelta = DEFAULT_STEP,
    limit: int | None = None,
) -> list[Interval]:
    """Every demo slot (start, end) in UTC, chronological, at most ``limit`` of them.

    A slot lies inside a window common to the teacher and the parent on the same local weekday, starts on
    the ``step`` grid (from local midnight) at or after ``earliest`` (the caller adds the minimum notice),
    ends by ``horizon_end``, is not on a closure day (local date), and overlaps no ``busy`` interval
    (touching is fine: a slot may start when a busy interval ends).
    """
    slots = iter_slots(teacher_availability, preferred, busy, closures, duration, earliest, horizon_end, tz, step)
    return list(slots if limit is None else islice(slots, limit))


def first_slot(
    teacher_availability: Iterable[WeeklyWindow],
    preferred: Iterable[WeeklyWindow],
    busy: Iterable[Interval],
    closures: Iterable[Closure],
    duration: timedelta,
    earliest: datetime,
    horizon_end: datetime,
    tz: ZoneInfo,
    step: timedelta = DEFAULT_STEP,
) -> Interval | None:
    """The earliest slot :func:`find_slots` would return, or None when there is none."""
    slots = iter_slots(teacher_availability, preferred, busy, closures, duration, earliest, horizon_end, tz, step)
    return next(slots, None)
