"""Re-enrollment rules: which semester follows, which semesters are due to open, the deadline and its reminder,
what an unanswered offer becomes, and the weekly slot offered in the next semester.

Plain functions of dates, times and intervals: no database, no clock (callers pass ``now``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from domain.calendar import Term, WeeklyWindow, require_aware, weekly_occurrences
from domain.slots import DEFAULT_STEP, merge_windows, overlaps

__all__ = [
    "Answer",
    "OfferedSlot",
    "ReenrollmentDefault",
    "SemesterDates",
    "choose_slot",
    "decided_returning",
    "default_deadline",
    "next_semester",
    "reminder_at",
    "semesters_to_open",
]

_WEEK_MINUTES = 7 * 24 * 60


class ReenrollmentDefault(StrEnum):
    """What an unanswered offer becomes at the deadline: the family returns unless it opts out, or ends."""

    return_ = "return"
    end = "end"


class Answer(StrEnum):
    """How an offer stands, as the office filters it."""

    returning = "returning"
    not_returning = "not_returning"
    not_answered = "not_answered"


@dataclass(frozen=True)
class SemesterDates:
    id: uuid.UUID
    start: date
    end: date


def next_semester(semesters: Iterable[SemesterDates], ending: SemesterDates) -> SemesterDates | None:
    """The first semester starting after ``ending`` ends, in the same academic year or a later one."""
    after = [s for s in semesters if s.start > ending.end and s.id != ending.id]
    return min(after, key=lambda s: (s.start, s.end), default=None)


def semesters_to_open(
    semesters: Sequence[SemesterDates], today: date, lead_time: timedelta
) -> list[tuple[SemesterDates, SemesterDates]]:
    """(ending, next) for each semester that ends between ``today`` and ``today + lead_time`` and has a next one."""
    due = []
    for semester in sorted(semesters, key=lambda s: s.start):
        if today <= semester.end <= today + lead_time:
            following = next_semester(semesters, semester)
            if following is not None:
                due.append((semester, following))
    return due


def default_deadline(now: datetime, ending: SemesterDates, answer_time: timedelta, tz: ZoneInfo) -> datetime:
    """The deadline when the office gives none: ``answer_time`` after the opening, but no later than the end of
    the ending semester's last day, so families know before their lessons stop; an opening after that day (a
    late one) still gives them ``answer_time``."""
    require_aware(now, "now")
    last_day_ends = datetime.combine(ending.end + timedelta(days=1), time(0), tzinfo=tz)
    wanted = now + answer_time
    return min(wanted, last_day_ends) if last_day_ends > now else wanted


def reminder_at(now: datetime, deadline: datetime, before: timedelta) -> datetime | None:
    """When to remind a family that has not answered: ``before`` the deadline, or None when that moment had
    already passed at opening (the offer itself is then the reminder)."""
    require_aware(now, "now")
    require_aware(deadline, "deadline")
    at = deadline - before
    return at if now < at < deadline else None


def decided_returning(answer: bool | None, default: ReenrollmentDefault | str) -> bool:
    """The family's answer, or the school's default for an unanswered offer."""
    if answer is not None:
        return answer
    return ReenrollmentDefault(default) == ReenrollmentDefault.return_


@dataclass(frozen=True)
class OfferedSlot:
    weekday: int
    start: time
    same_as_now: bool  # the student's present weekday and time


def _minute_of_week(weekday: int, at: time) -> int:
    return weekday * 24 * 60 + at.hour * 60 + at.minute


def _week_distance(a: int, b: int) -> int:
    gap = abs(a - b) % _WEEK_MINUTES
    return min(gap, _WEEK_MINUTES - gap)


def _candidate_starts(windows: Iterable[WeeklyWindow], duration: timedelta, step: timedelta) -> list[tuple[int, time]]:
    starts = []
    for window in merge_windows(windows):
        day_start = datetime.combine(date.min, window.start)
        end = datetime.combine(date.min, window.end)
        first = -(-(day_start - datetime.min) // step) * step
        at = datetime.min + first
        while at + duration <= end:
            starts.append((window.weekday, at.time()))
            at += step
    return starts


def _fits(windows: Iterable[WeeklyWindow], weekday: int, start: time, duration: timedelta) -> bool:
    end = (datetime.combine(date.min, start) + duration).time()
    return end > start and any(w.weekday == weekday and w.contains(start, end) for w in windows)


def _free_every_week(
    term: Term,
    weekday: int,
    start: time,
    duration: timedelta,
    busy: Sequence[tuple[datetime, datetime]],
    tz: ZoneInfo,
    from_: datetime,
) -> bool:
    weeks = weekly_occurrences(term, weekday, start, duration, tz, from_)
    return bool(weeks) and not any(overlaps(s, e, bs, be) for s, e in weeks for bs, be in busy)


def choose_slot(
    weekday: int,
    start: time,
    duration: timedelta,
    term: Term,
    availability: Sequence[WeeklyWindow],
    busy: Sequence[tuple[datetime, datetime]],
    tz: ZoneInfo,
    from_: datetime,
    step: timedelta = DEFAULT_STEP,
) -> OfferedSlot | None:
    """The weekly slot offered with the same teacher in the next semester (``term``).

    The present weekday and local time when the teacher is available then and it is free every week of the term
    (closures skipped); otherwise the free weekly slot inside the teacher's availability nearest to it around the
    week (an earlier one on a tie); None when the teacher has no such slot. ``busy`` is the teacher's taken time
    in the term (other lessons, time off).
    """
    require_aware(from_, "from_")
    if _fits(availability, weekday, start, duration) and _free_every_week(
        term, weekday, start, duration, busy, tz, from_
    ):
        return OfferedSlot(weekday, start, same_as_now=True)
    wanted = _minute_of_week(weekday, start)
    candidates = sorted(
        _candidate_starts(availability, duration, step),
        key=lambda c: (_week_distance(_minute_of_week(*c), wanted), _minute_of_week(*c)),
    )
    for candidate_day, candidate_start in candidates:
        if (candidate_day, candidate_start) == (weekday, start):
            continue
        if _free_every_week(term, candidate_day, candidate_start, duration, busy, tz, from_):
            return OfferedSlot(candidate_day, candidate_start, same_as_now=False)
    return None
