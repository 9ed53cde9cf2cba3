"""School time: weekly windows, closures, terms, and the weekly lessons of a term.

Times of day are the school's local wall-clock times (naive ``time``); instants are aware ``datetime``s and
the functions here return them in UTC. Converting through the wall clock of each day is what keeps a 16:00
lesson at 16:00 local on both sides of a daylight-saving change.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

__all__ = [
    "Closure",
    "Term",
    "WeeklyWindow",
    "genuine_zone",
    "is_closed",
    "local_to_utc",
    "require_aware",
    "weekly_occurrences",
]


@dataclass(frozen=True, order=True)
class WeeklyWindow:
    """A recurring weekly interval of local time on one weekday (0 = Monday … 6 = Sunday), end exclusive."""

    weekday: int
    start: time
    end: time

    def __post_init__(self) -> None:
        if isinstance(self.weekday, bool) or not isinstance(self.weekday, int) or not 0 <= self.weekday <= 6:
            raise ValueError(f"weekday must be an int 0 (Monday) to 6 (Sunday), got {self.weekday!r}")
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("window times are local wall-clock times and must be naive")
        if self.end <= self.start:
            raise ValueError(f"window end {self.end} must be after its start {self.start}")

    def contains(self, start: time, end: time) -> bool:
        """Whether the local interval [start, end) on this window's weekday lies inside the window."""
        return self.start <= start and end <= self.end


@dataclass(frozen=True)
class Closure:
    """Days the school is closed, ``start`` to ``end`` inclusive (a single day has start == end)."""

    start: date
    end: date
    reason: str = ""

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"closure end {self.end} is before its start {self.start}")

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Term:
    """A teaching term, ``start`` to ``end`` inclusive, with its closures."""

    start: date
    end: date
    closures: Sequence[Closure] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"term end {self.end} is before its start {self.start}")
        # A tuple keeps the frozen dataclass hashable even when a caller passes a list.
        object.__setattr__(self, "closures", tuple(self.closures))


def is_closed(day: date, closures: Iterable[Closure]) -> bool:
    """Whether any closure covers ``day`` (a local calendar date)."""
    return any(closure.covers(day) for closure in closures)


def require_aware(value: datetime, name: str) -> None:
    """Refuse naive datetimes: an instant without a zone is a bug waiting for the next DST change."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


def genuine_zone(tz: ZoneInfo) -> ZoneInfo:
    """``tz`` itself, or, inside Temporal's workflow sandbox, the real ZoneInfo behind its proxy.

    The sandbox wraps every ZoneInfo built in workflow code in a restricted proxy, which ``datetime``'s C code
    refuses ("tzinfo argument must be ... a tzinfo subclass"). The proxy forwards ``__class__`` to the real
    class, whose per-key cache hands back the genuine zone, with no file read after the first load.
    """
    real_class = tz.__class__
    return tz if type(tz) is real_class else real_class(tz.key)


def local_to_utc(day: date, at: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of local wall-clock time ``at`` on ``day`` in ``tz``.

    An ambiguous time (the repeated hour in autumn) resolves to its first occurrence (fold=0); a time that
    does not exist (the skipped hour in spring) moves forward by the gap, so 02:30 becomes 03:30 local.
    """
    return datetime.combine(day, at.replace(tzinfo=None), tzinfo=genuine_zone(tz)).astimezone(UTC)


def weekly_occurrences(
    term: Term,
    weekday: int,
    local_start: time,
    duration: timedelta,
    tz: ZoneInfo,
    from_: datetime,
) -> list[tuple[datetime, datetime]]:
    """Each week's lesson (start, end) in UTC for the rest of ``term``, oldest first.

    A lesson is included when its start is at or after ``from_`` and its local date is inside the term and
    not covered by a closure. The start is placed on the local wall clock of each day, so it keeps its local
    time across DST changes; the end is ``duration`` of elapsed time later.
    """
    if not 0 <= weekday <= 6:
        raise ValueError(f"weekday must be 0 (Monday) to 6 (Sunday), got {weekday}")
    if duration <= timedelta(0):
        raise ValueError("lesson duration must be positive")
    require_aware(from_, "from_")
    tz = genuine_zone(tz)
    closures = tuple(term.closures)
    day = term.start + timedelta(days=(weekday - term.start.weekday()) % 7)
    occurrences: list[tuple[datetime, datetime]] = []
    while day <= term.end:
        if not is_closed(day, closures):
            start = local_to_utc(day, local_start, tz)
            if start >= from_:
                occurrences.append((start, start + duration))
        day += timedelta(days=7)
    return occurrences
