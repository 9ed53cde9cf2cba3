"""The owner's reports as plain arithmetic: revenue grouped by month, instrument and teacher; receivables aged
by days past due; retention from one semester to the next; make-up credits by expiry month.

Amounts are integer minor units. Nothing here reads the database or the clock: callers pass the rows and dates.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo

__all__ = [
    "AGING_BUCKETS",
    "AgingBucket",
    "Receivable",
    "RetentionRow",
    "RevenueBreakdown",
    "RevenueItem",
    "RevenueTotals",
    "age_receivables",
    "aging_bucket",
    "count_by_month",
    "group_revenue",
    "month_of",
    "rate_percent",
    "retention",
    "source_of",
]

AGING_BUCKETS = ("0-30", "31-60", "61-90", "90+")
REVERSAL_PREFIX = "reversal:"


def month_of(at: datetime, tz: tzinfo) -> str:
    """The school's calendar month of an instant, ``"2026-03"`` (a naive datetime is refused)."""
    if at.tzinfo is None:
        raise ValueError("month_of needs an aware datetime")
    return at.astimezone(tz).strftime("%Y-%m")


def source_of(idempotency_key: str) -> tuple[str, str, int]:
    """A ledger entry's key → (the kind of its original entry, that entry's source id, sign): a reversal
    (``reversal:lesson_completed:<id>``) names the same source with sign -1; reversing a reversal gives +1."""
    sign, key = 1, idempotency_key
    while key.startswith(REVERSAL_PREFIX):
        sign, key = -sign, key[len(REVERSAL_PREFIX) :]
    kind, _, source = key.partition(":")
    return kind, source, sign


@dataclass(frozen=True)
class RevenueItem:
    """One revenue or contra-revenue posting as the report sees it: ``revenue_minor`` earned (a credit to a
    revenue account, positive) and ``refunds_minor`` given back (a debit to contra-revenue, positive); the
    instrument and teacher of the enrollment it belongs to, None for an item tied to no enrollment."""

    occurred_at: datetime
    revenue_minor: int = 0
    refunds_minor: int = 0
    instrument: str | None = None
    teacher_id: uuid.UUID | None = None


@dataclass
class RevenueTotals:
    revenue_minor: int = 0
    refunds_minor: int = 0

    @property
    def net_minor(self) -> int:
        return self.revenue_minor - self.refunds_minor

    def add(self, item: RevenueItem) -> None:
        self.revenue_minor += item.revenue_minor
        self.refunds_minor += item.refunds_minor


@dataclass
class RevenueBreakdown:
    total: RevenueTotals = field(default_factory=RevenueTotals)
    by_month: dict[str, RevenueTotals] = field(default_factory=dict)
    by_instrument: dict[str | None, RevenueTotals] = field(default_factory=dict)
    by_teacher: dict[uuid.UUID | None, RevenueTotals] = field(default_factory=dict)


def group_revenue(items: Iterable[RevenueItem], tz: tzinfo) -> RevenueBreakdown:
    """Totals overall and per month (the school's), instrument and teacher; each grouping sums to the total."""
    out = RevenueBreakdown()
    for item in items:
        out.total.add(item)
        out.by_month.setdefault(month_of(item.occurred_at, tz), RevenueTotals()).add(item)
        out.by_instrument.setdefault(item.instrument, RevenueTotals()).add(item)
        out.by_teacher.setdefault(item.teacher_id, RevenueTotals()).add(item)
    out.by_month = dict(sorted(out.by_month.items()))
    return out


def aging_bucket(days_past_due: int) -> str:
    """``0-30`` (not yet due or up to 30 days), ``31-60``, ``61-90``, ``90+``."""
    if days_past_due <= 30:
        return AGING_BUCKETS[0]
    if days_past_due <= 60:
        return AGING_BUCKETS[1]
    if days_past_due <= 90:
        return AGING_BUCKETS[2]
    return AGING_BUCKETS[3]


@dataclass(frozen=True)
class Receivable:
    """What one invoice (or an entry tied to none) still owes, and the day it fell due."""

    due_on: date
    amount_minor: int


@dataclass
class AgingBucket:
    bucket: str
    items: int = 0
    amount_minor: int = 0


def age_receivables(receivables: Iterable[Receivable], as_of: date) -> list[AgingBucket]:
    """Every bucket in order (empty ones included); an item owing nothing is left out, a credit balance is
    kept (so the buckets always sum to the receivable's balance)."""
    buckets = {name: AgingBucket(name) for name in AGING_BUCKETS}
    for item in receivables:
        if item.amount_minor == 0:
            continue
        bucket = buckets[aging_bucket((as_of - item.due_on).days)]
        bucket.items += 1
        bucket.amount_minor += item.amount_minor
    return list(buckets.values())


def rate_percent(part: int, whole: int) -> int | None:
    """``part`` of ``whole`` in percent, rounded half up; None when ``whole`` is 0."""
    return None if whole == 0 else (200 * part + whole) // (2 * whole)


@dataclass(frozen=True)
class RetentionRow:
    label: str
    active: int
    new: int  # active now, not active in the semester before
    retained_next: int | None = None
    retention_rate_percent: int | None = None


def retention(semesters: Sequence[tuple[str, frozenset[uuid.UUID]]]) -> list[RetentionRow]:
    """Semesters in order with their active students: how many of semester N's are active in N+1 (None for the
    last semester, which has no next one yet), and how many are new to N."""
    rows: list[RetentionRow] = []
    for index, (label, active) in enumerate(semesters):
        before = semesters[index - 1][1] if index > 0 else frozenset()
        following = semesters[index + 1][1] if index + 1 < len(semesters) else None
        retained = None if following is None else len(active & following)
        rows.append(
            RetentionRow(
                label=label,
                active=len(active),
                new=len(active - before),
                retained_next=retained,
                retention_rate_percent=None if retained is None else rate_percent(retained, len(active)),
            )
        )
    return rows


def count_by_month(items: Iterable[tuple[datetime, int]], tz: tzinfo) -> dict[str, tuple[int, int]]:
    """(instant, minutes) pairs → per school month, in order: (how many, their minutes)."""
    out: dict[str, tuple[int, int]] = {}
    for at, minutes in items:
        month = month_of(at, tz)
        count, total = out.get(month, (0, 0))
        out[month] = (count + 1, total + minutes)
    return dict(sorted(out.items()))
