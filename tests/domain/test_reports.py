"""The owner's reports' arithmetic (``domain/reports.py``): month grouping, aging buckets, retention."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.reports import (
    AGING_BUCKETS,
    Receivable,
    RevenueItem,
    age_receivables,
    aging_bucket,
    count_by_month,
    group_revenue,
    month_of,
    rate_percent,
    retention,
    source_of,
)

VANCOUVER = ZoneInfo("America/Vancouver")


def test_a_month_is_the_schools_local_month() -> None:
    # 1 March 03:00 UTC is still 28 February in Vancouver.
    assert month_of(datetime(2026, 3, 1, 3, tzinfo=UTC), VANCOUVER) == "2026-02"
    assert month_of(datetime(2026, 3, 1, 9, tzinfo=UTC), VANCOUVER) == "2026-03"
    with pytest.raises(ValueError, match="aware"):
        month_of(datetime(2026, 3, 1), VANCOUVER)


def test_entry_keys_name_their_source_and_reversals_flip_the_sign() -> None:
    assert source_of("lesson_completed:abc") == ("lesson_completed", "abc", 1)
    assert source_of("reversal:lesson_completed:abc") == ("lesson_completed", "abc", -1)
    assert source_of("reversal:reversal:invoice_finalized:in_1") == ("invoice_finalized", "in_1", 1)


def test_revenue_groups_each_sum_to_the_total() -> None:
    ana, ben = uuid.uuid4(), uuid.uuid4()
    items = [
        RevenueItem(datetime(2026, 1, 10, 20, tzinfo=UTC), revenue_minor=3500, instrument="piano", teacher_id=ana),
        RevenueItem(datetime(2026, 2, 1, 5, tzinfo=UTC), revenue_minor=3500, instrument="piano", teacher_id=ana),
        RevenueItem(datetime(2026, 2, 10, 20, tzinfo=UTC), revenue_minor=4000, instrument="guitar", teacher_id=ben),
        RevenueItem(datetime(2026, 2, 11, 20, tzinfo=UTC), refunds_minor=1000, instrument="guitar", teacher_id=ben),
        RevenueItem(datetime(2026, 2, 12, 20, tzinfo=UTC), refunds_minor=500),  # a one-off item: no instrument
    ]
    out = group_revenue(items, VANCOUVER)
    assert (out.total.revenue_minor, out.total.refunds_minor, out.total.net_minor) == (11000, 1500, 9500)
    assert {month: t.net_minor for month, t in out.by_month.items()} == {"2026-01": 7000, "2026-02": 2500}
    assert list(out.by_month) == ["2026-01", "2026-02"]
    assert {k: t.net_minor for k, t in out.by_instrument.items()} == {"piano": 7000, "guitar": 3000, None: -500}
    assert {k: t.net_minor for k, t in out.by_teacher.items()} == {ana: 7000, ben: 3000, None: -500}
    for grouping in (out.by_month, out.by_instrument, out.by_teacher):
        assert sum(t.net_minor for t in grouping.values()) == out.total.net_minor


@pytest.mark.parametrize(
    ("days", "bucket"),
    [(-5, "0-30"), (0, "0-30"), (30, "0-30"), (31, "31-60"), (60, "31-60"), (61, "61-90"), (90, "61-90"), (91, "90+")],
)
def test_aging_buckets_edges(days: int, bucket: str) -> None:
    assert aging_bucket(days) == bucket


def test_aged_receivables_keep_every_bucket_and_sum_to_the_balance() -> None:
    as_of = date(2026, 6, 30)
    items = [
        Receivable(date(2026, 6, 29), 14000),
        Receivable(date(2026, 5, 15), 14000),  # 46 days
        Receivable(date(2026, 5, 1), 0),  # paid: left out
        Receivable(date(2026, 1, 1), 7000),
        Receivable(date(2026, 1, 2), -500),  # a credit balance stays, so the sum is the ledger's
    ]
    buckets = age_receivables(items, as_of)
    assert [b.bucket for b in buckets] == list(AGING_BUCKETS)
    assert [(b.items, b.amount_minor) for b in buckets] == [(1, 14000), (1, 14000), (0, 0), (2, 6500)]
    assert sum(b.amount_minor for b in buckets) == 34500


def test_rate_percent_rounds_half_up() -> None:
    assert rate_percent(1, 3) == 33
    assert rate_percent(2, 3) == 67
    assert rate_percent(1, 8) == 13  # 12.5 → 13
    assert rate_percent(0, 0) is None


def test_retention_counts_students_of_n_active_in_n_plus_one() -> None:
    a, b, c, d = (uuid.uuid4() for _ in range(4))
    rows = retention([("Fall", frozenset({a, b, c})), ("Winter", frozenset({a, b, d})), ("Spring", frozenset())])
    assert [(r.label, r.active, r.new, r.retained_next, r.retention_rate_percent) for r in rows] == [
        ("Fall", 3, 3, 2, 67),
        ("Winter", 3, 1, 0, 0),
        ("Spring", 0, 0, None, None),
    ]
    assert retention([]) == []


def test_count_by_month_in_order() -> None:
    items = [(datetime(2026, 4, 2, 20, tzinfo=UTC), 30), (datetime(2026, 3, 2, 20, tzinfo=UTC), 45)]
    items.append((datetime(2026, 4, 30, 20, tzinfo=UTC), 30))
    assert count_by_month(items, VANCOUVER) == {"2026-03": (1, 45), "2026-04": (2, 60)}
