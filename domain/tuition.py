"""Tuition that follows the lessons: the billing periods that hold a subscription's lessons and what each one
costs by the school's rule (``settings.tuition_rule``), and what each lesson earns of its period's amount.

Periods are Cedar's, not Stripe's: calendar months (monthly plans) or Monday-to-Sunday weeks (weekly plans) in the
school's timezone, counted from the enrollment's regular lessons that are not cancelled. A period without lessons
is never billed. Amounts are integer minor units; a prorated amount is rounded down (the family never pays a
fraction of a cent more than its lessons' exact share) and never exceeds the plan's price.

Rules:

- ``prorated``: every period at the plan's price, except the first and the last period of each stretch of lessons
  (a semester, or semesters with no long break between them), which cost ``price × lessons held ÷ a full period's
  lessons`` (:data:`~domain.billing_rules.MONTHLY_LESSONS` for a monthly plan, 1 for a weekly one), at most the
  price. Lessons more than :data:`STRETCH_BREAK` apart start a new stretch: a returning student's next semester
  starts prorated after the break, and a month already billed as a stretch's last stays so when the next semester
  is booked;
- ``monthly_flat``: every period holding lessons at the plan's price;
- ``per_lesson``: lessons held × :func:`~domain.billing_rules.lesson_share`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import pairwise
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from domain.billing_rules import MONTHLY_LESSONS, lesson_share
from domain.calendar import local_to_utc, require_aware

__all__ = [
    "STRETCH_BREAK",
    "TUITION_RULES",
    "LessonGap",
    "Period",
    "TuitionRule",
    "cycle_anchor",
    "full_period_lessons",
    "lesson_earnings",
    "lesson_gap",
    "lesson_periods",
    "period_amount",
    "period_amounts",
    "period_bounds",
    "period_instants",
    "period_key",
    "period_last_lesson_end",
    "unheld_amount",
]

TuitionRule = Literal["prorated", "monthly_flat", "per_lesson"]
# Longer than a winter or spring break inside a semester, shorter than the break between two semesters.
STRETCH_BREAK = timedelta(weeks=4)
TUITION_RULES: tuple[str, ...] = get_args(TuitionRule)


@dataclass(frozen=True, order=True)
class Period:
    """One billing period holding lessons: local dates ``[start, end)`` and how many lessons it holds."""

    start: date
    end: date
    lessons: int
    # The first or last period of a stretch of lessons (see STRETCH_BREAK): the prorated rule prorates it.
    opens_stretch: bool = False
    closes_stretch: bool = False

    @property
    def key(self) -> str:
        """Stable name of the period: ``2026-09`` (a month) or ``2026-09-07`` (the week's Monday)."""
        return self.start.strftime("%Y-%m") if (self.end - self.start).days > 7 else self.start.isoformat()


def _require_interval(interval: str) -> None:
    if interval not in ("month", "week"):
        raise ValueError(f"interval must be 'month' or 'week', got {interval!r}")


def _require_rule(rule: str) -> None:
    if rule not in TUITION_RULES:
        raise ValueError(f"rule must be one of {TUITION_RULES}, got {rule!r}")


def period_bounds(moment: datetime, interval: str, tz: ZoneInfo) -> tuple[date, date]:
    """The local dates ``[start, end)`` of the period holding ``moment``."""
    require_aware(moment, "moment")
    _require_interval(interval)
    day = moment.astimezone(tz).date()
    if interval == "week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    first = day.replace(day=1)
    following = date(first.year + 1, 1, 1) if first.month == 12 else date(first.year, first.month + 1, 1)
    return first, following


def period_instants(moment: datetime, interval: str, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants ``[start, end)`` of the period holding ``moment``: its local midnights."""
    start, end = period_bounds(moment, interval, tz)
    return local_to_utc(start, time(0), tz), local_to_utc(end, time(0), tz)


def cycle_anchor(first_lesson: datetime, interval: str, tz: ZoneInfo) -> datetime:
    """Where Stripe's billing cycle is anchored so its periods are Cedar's: the end of the first lesson's period
    (the 1st of the next month, or the next Monday, at midnight school time)."""
    return period_instants(first_lesson, interval, tz)[1]


def period_key(moment: datetime, interval: str, tz: ZoneInfo) -> str:
    start, end = period_bounds(moment, interval, tz)
    return Period(start, end, 0).key


def lesson_periods(lesson_starts: Iterable[datetime], interval: str, tz: ZoneInfo) -> list[Period]:
    """The periods holding at least one of the lessons (by their start), in order, with their lesson counts and
    whether each opens or closes a stretch of lessons."""
    starts = sorted(lesson_starts)
    counts: dict[tuple[date, date], int] = {}
    opening: set[tuple[date, date]] = set()
    closing: set[tuple[date, date]] = set()
    for i, start in enumerate(starts):
        bounds = period_bounds(start, interval, tz)
        counts[bounds] = counts.get(bounds, 0) + 1
        if i == 0 or start - starts[i - 1] > STRETCH_BREAK:
            opening.add(bounds)
        if i == len(starts) - 1 or starts[i + 1] - start > STRETCH_BREAK:
            closing.add(bounds)
    return [Period(s, e, n, (s, e) in opening, (s, e) in closing) for (s, e), n in sorted(counts.items())]


@dataclass(frozen=True)
class LessonGap:
    """Whole periods without lessons between two lessons: billing pauses from ``begins_at`` (the end of the last
    lesson before them) until ``resumes_at`` (the start of the period holding the next lesson)."""

    begins_at: datetime
    resumes_at: datetime


def lesson_gap(
    lessons: Iterable[tuple[datetime, datetime]], after: datetime, interval: str, tz: ZoneInfo
) -> LessonGap | None:
    """The first gap of at least one whole period without lessons that is not over at ``after`` (its next lesson's
    period starts later), among ``lessons`` given as ``(start, end)``; None when there is none."""
    require_aware(after, "after")
    ordered = sorted(lessons)
    ended: datetime | None = None
    for (start, end), (following, _) in pairwise(ordered):
        ended = end if ended is None else max(ended, end)
        before_end = period_bounds(start, interval, tz)[1]
        next_start = period_bounds(following, interval, tz)[0]
        if next_start <= before_end:
            continue  # the next lesson is in the same period or the one right after: no period without lessons
        resumes_at = local_to_utc(next_start, time(0), tz)
        if resumes_at > after:
            return LessonGap(begins_at=ended, resumes_at=resumes_at)
    return None


def period_last_lesson_end(
    lessons: Iterable[tuple[datetime, datetime]], after: datetime, interval: str, tz: ZoneInfo
) -> datetime | None:
    """When the lesson period in progress (or next) at ``after`` has given its last lesson: the end of the last of
    ``lessons`` in the period of the first lesson ending after ``after``. None when no later period holds lessons
    (after it there is no gap to begin)."""
    require_aware(after, "after")
    ahead = sorted((start, end) for start, end in lessons if end > after)
    if not ahead:
        return None
    current = period_bounds(ahead[0][0], interval, tz)
    in_current = [end for start, end in ahead if period_bounds(start, interval, tz) == current]
    if len(in_current) == len(ahead):
        return None
    return max(in_current)


def full_period_lessons(interval: str) -> int:
    """How many weekly lessons a full period holds for its price."""
    _require_interval(interval)
    return 1 if interval == "week" else MONTHLY_LESSONS


def _require_amount(price: int) -> None:
    if isinstance(price, bool) or not isinstance(price, int) or price < 0:
        raise ValueError(f"price must be an integer ≥ 0, got {price!r}")


def period_amount(
    rule: str, price: int, interval: str, lessons: int, *, first: bool = False, last: bool = False
) -> int:
    """What one period holding ``lessons`` lessons costs by ``rule`` (0 when it holds none). ``first``/``last``:
    it is the first or last period of the lessons (only the prorated rule cares)."""
    _require_rule(rule)
    _require_amount(price)
    _require_interval(interval)
    if lessons <= 0:
        return 0
    if rule == "per_lesson":
        return lessons * lesson_share(price, interval)
    if rule == "monthly_flat" or not (first or last):
        return price
    return min(price, price * lessons // full_period_lessons(interval))


def period_amounts(rule: str, price: int, interval: str, periods: Sequence[Period]) -> list[int]:
    """Each period's amount by ``rule``; the first and the last of ``periods``, and any that opens or closes a
    stretch of lessons, are prorated by that rule."""
    last = len(periods) - 1
    return [
        period_amount(
            rule, price, interval, p.lessons, first=i == 0 or p.opens_stretch, last=i == last or p.closes_stretch
        )
        for i, p in enumerate(periods)
    ]


def unheld_amount(rule: str, price: int, interval: str, billed_minor: int, held: int, *, first: bool = False) -> int:
    """What to give back of a period billed ``billed_minor`` when only ``held`` of its lessons happen (the student
    stopped): the difference to the amount the period costs as the lessons' last period, never below zero."""
    owed = period_amount(rule, price, interval, held, first=first, last=True)
    return max(0, billed_minor - owed)


def lesson_earnings(
    rule: str, price: int, interval: str, lesson_starts: Sequence[datetime], tz: ZoneInfo
) -> dict[datetime, int]:
    """What each lesson earns: its period's amount spread over the period's lessons in order (the remainder's cents
    spread among them), so a period's lessons together earn exactly what the period bills."""
    periods = lesson_periods(lesson_starts, interval, tz)
    amounts = dict(zip((p.start for p in periods), period_amounts(rule, price, interval, periods), strict=True))
    by_period: dict[date, list[datetime]] = {}
    for start in sorted(lesson_starts):
        by_period.setdefault(period_bounds(start, interval, tz)[0], []).append(start)
    earned: dict[datetime, int] = {}
    for period_start, starts in by_period.items():
        amount, n = amounts[period_start], len(starts)
        for i, start in enumerate(starts):
            # Cumulative shares: the pieces sum to the amount with no cent lost or made.
            earned[start] = amount * (i + 1) // n - amount * i // n
    return earned
