from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.calendar import Closure, WeeklyWindow, is_closed
from domain.slots import find_slots, first_slot, merge_windows, overlapping_windows, overlaps

VANCOUVER = ZoneInfo("America/Vancouver")
MONDAY, TUESDAY = 0, 1
HALF_HOUR = timedelta(minutes=30)
TEACHER = [WeeklyWindow(MONDAY, time(15), time(18))]
PARENT = [WeeklyWindow(MONDAY, time(16), time(17))]
# Monday 6 Oct 2025 00:00 local (PDT) and the following Monday at midnight.
WEEK_START = datetime(2025, 10, 6, tzinfo=VANCOUVER)
ONE_MONDAY = (WEEK_START, WEEK_START + timedelta(days=1))


def local(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=VANCOUVER)


def local_starts(slots: list[tuple[datetime, datetime]]) -> list[datetime]:
    return [start.astimezone(VANCOUVER).replace(tzinfo=None) for start, _ in slots]


def test_overlapping_windows_is_the_intersection() -> None:
    teacher = [WeeklyWindow(MONDAY, time(15), time(18)), WeeklyWindow(TUESDAY, time(9), time(12))]
    parent = [WeeklyWindow(MONDAY, time(16), time(19)), WeeklyWindow(TUESDAY, time(13), time(14))]
    assert overlapping_windows(teacher, parent) == [WeeklyWindow(MONDAY, time(16), time(18))]


def test_touching_or_other_day_windows_do_not_overlap() -> None:
    assert (
        overlapping_windows([WeeklyWindow(MONDAY, time(15), time(16))], [WeeklyWindow(MONDAY, time(16), time(17))])
        == []
    )
    assert (
        overlapping_windows([WeeklyWindow(MONDAY, time(15), time(16))], [WeeklyWindow(TUESDAY, time(15), time(16))])
        == []
    )
    assert overlapping_windows([], PARENT) == []


def test_overlapping_windows_are_disjoint_even_when_inputs_overlap() -> None:
    teacher = [WeeklyWindow(MONDAY, time(15), time(17)), WeeklyWindow(MONDAY, time(16), time(18))]
    parent = [WeeklyWindow(MONDAY, time(14), time(19)), WeeklyWindow(MONDAY, time(15), time(16))]
    assert overlapping_windows(teacher, parent) == [WeeklyWindow(MONDAY, time(15), time(18))]


def test_merge_windows_joins_touching_windows_of_one_day_only() -> None:
    windows = [
        WeeklyWindow(TUESDAY, time(9), time(10)),
        WeeklyWindow(MONDAY, time(16), time(17)),
        WeeklyWindow(MONDAY, time(15), time(16)),
    ]
    assert merge_windows(windows) == [
        WeeklyWindow(MONDAY, time(15), time(17)),
        WeeklyWindow(TUESDAY, time(9), time(10)),
    ]


def test_overlaps_is_half_open() -> None:
    a, b, c = (datetime(2025, 10, 6, h, tzinfo=UTC) for h in (16, 17, 18))
    assert not overlaps(a, b, b, c)
    assert overlaps(a, c, b, c)


def test_slots_fit_both_windows_on_the_quarter_hour() -> None:
    slots = find_slots(TEACHER, PARENT, [], [], HALF_HOUR, *ONE_MONDAY, VANCOUVER)
    day = date(2025, 10, 6)
    assert local_starts(slots) == [datetime.combine(day, time(16, m)) for m in (0, 15, 30)]
    assert all(end - start == HALF_HOUR for start, end in slots)
    assert all(start.tzinfo is UTC for start, _ in slots)


def test_busy_interval_blocks_overlapping_slots_but_touching_ones_remain() -> None:
    day = date(2025, 10, 6)
    busy = [(local(day, 16, 0), local(day, 16, 30))]
    assert local_starts(find_slots(TEACHER, PARENT, busy, [], HALF_HOUR, *ONE_MONDAY, VANCOUVER)) == [
        datetime.combine(day, time(16, 30))
    ]
    busy_after = [(local(day, 16, 30), local(day, 17, 0))]
    assert local_starts(find_slots(TEACHER, PARENT, busy_after, [], HALF_HOUR, *ONE_MONDAY, VANCOUVER)) == [
        datetime.combine(day, time(16, 0))
    ]


def test_busy_intervals_in_other_zones_are_compared_as_instants() -> None:
    busy_utc = [(datetime(2025, 10, 6, 23, 30, tzinfo=UTC), datetime(2025, 10, 7, 0, 0, tzinfo=UTC))]
    slots = find_slots(TEACHER, PARENT, busy_utc, [], HALF_HOUR, *ONE_MONDAY, VANCOUVER)
    assert local_starts(slots) == [datetime(2025, 10, 6, 16, 0)]  # busy is 16:30-17:00 PDT


def test_closure_days_have_no_slots() -> None:
    thanksgiving = Closure(date(2025, 10, 13), date(2025, 10, 13), "Thanksgiving")
    two_weeks = (WEEK_START, WEEK_START + timedelta(days=14))
    slots = find_slots(TEACHER, PARENT, [], [thanksgiving], HALF_HOUR, *two_weeks, VANCOUVER)
    assert {s.date() for s in local_starts(slots)} == {date(2025, 10, 6)}


def test_slots_start_at_or_after_earliest_on_the_grid() -> None:
    earliest = local(date(2025, 10, 6), 16, 10)
    slots = find_slots(TEACHER, PARENT, [], [], HALF_HOUR, earliest, ONE_MONDAY[1], VANCOUVER)
    assert local_starts(slots) == [datetime(2025, 10, 6, 16, 15), datetime(2025, 10, 6, 16, 30)]
    exact = local(date(2025, 10, 6), 16, 15)
    assert find_slots(TEACHER, PARENT, [], [], HALF_HOUR, exact, ONE_MONDAY[1], VANCOUVER)[0][0] == exact


def test_slot_ending_exactly_at_the_horizon_is_kept() -> None:
    horizon = local(date(2025, 10, 6), 16, 45)
    slots = find_slots(TEACHER, PARENT, [], [], HALF_HOUR, WEEK_START, horizon, VANCOUVER)
    assert local_starts(slots) == [datetime(2025, 10, 6, 16, 0), datetime(2025, 10, 6, 16, 15)]


def test_grid_is_counted_from_local_midnight() -> None:
    odd_parent = [WeeklyWindow(MONDAY, time(15, 10), time(16))]
    slots = find_slots(TEACHER, odd_parent, [], [], HALF_HOUR, *ONE_MONDAY, VANCOUVER)
    assert local_starts(slots) == [datetime(2025, 10, 6, 15, 15), datetime(2025, 10, 6, 15, 30)]


def test_slots_keep_local_time_across_the_november_dst_change() -> None:
    # Mondays 27 Oct (PDT) and 3 Nov (PST) 2025, around the change on Sunday 2 Nov.
    earliest = datetime(2025, 10, 27, tzinfo=VANCOUVER)
    slots = find_slots(
        TEACHER, PARENT, [], [], HALF_HOUR, earliest, earliest + timedelta(days=8), VANCOUVER, step=HALF_HOUR
    )
    assert [start for start, _ in slots] == [
        datetime(2025, 10, 27, 23, 0, tzinfo=UTC),
        datetime(2025, 10, 27, 23, 30, tzinfo=UTC),
        datetime(2025, 11, 4, 0, 0, tzinfo=UTC),
        datetime(2025, 11, 4, 0, 30, tzinfo=UTC),
    ]


def test_slots_are_chronological_across_several_windows_and_weeks() -> None:
    teacher = [WeeklyWindow(TUESDAY, time(9), time(10)), WeeklyWindow(MONDAY, time(15), time(18))]
    parent = [WeeklyWindow(TUESDAY, time(8), time(12)), WeeklyWindow(MONDAY, time(17), time(20))]
    slots = find_slots(teacher, parent, [], [], HALF_HOUR, WEEK_START, WEEK_START + timedelta(days=21), VANCOUVER)
    starts = [start for start, _ in slots]
    assert starts == sorted(starts)
    assert len(starts) == 3 * (3 + 3)  # per week: 17:00,17:15,17:30 Monday; 09:00,09:15,09:30 Tuesday


def test_first_slot_and_limit() -> None:
    all_slots = find_slots(TEACHER, PARENT, [], [], HALF_HOUR, *ONE_MONDAY, VANCOUVER)
    assert first_slot(TEACHER, PARENT, [], [], HALF_HOUR, *ONE_MONDAY, VANCOUVER) == all_slots[0]
    assert find_slots(TEACHER, PARENT, [], [], HALF_HOUR, *ONE_MONDAY, VANCOUVER, limit=2) == all_slots[:2]


def test_no_common_time_means_no_slot() -> None:
    tuesday_parent = [WeeklyWindow(TUESDAY, time(16), time(17))]
    assert first_slot(TEACHER, tuesday_parent, [], [], HALF_HOUR, *ONE_MONDAY, VANCOUVER) is None
    too_long = timedelta(minutes=90)
    assert first_slot(TEACHER, PARENT, [], [], too_long, *ONE_MONDAY, VANCOUVER) is None


def test_naive_or_nonpositive_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="earliest must be a timezone-aware datetime"):
        find_slots(TEACHER, PARENT, [], [], HALF_HOUR, datetime(2025, 10, 6), ONE_MONDAY[1], VANCOUVER)
    with pytest.raises(ValueError, match="duration and step must be positive"):
        find_slots(TEACHER, PARENT, [], [], timedelta(0), *ONE_MONDAY, VANCOUVER)
    with pytest.raises(ValueError, match="duration and step must be positive"):
        find_slots(TEACHER, PARENT, [], [], HALF_HOUR, *ONE_MONDAY, VANCOUVER, step=timedelta(0))


quarter_hours = st.integers(min_value=8 * 4, max_value=20 * 4).map(lambda q: time(q // 4, q % 4 * 15))


@st.composite
def windows(draw: st.DrawFn) -> WeeklyWindow:
    start = draw(quarter_hours)
    length = draw(st.integers(min_value=1, max_value=12)) * timedelta(minutes=15)
    end = (datetime.combine(date(2025, 1, 1), start) + length).time()
    return WeeklyWindow(draw(st.integers(0, 6)), start, end)


@settings(max_examples=60, deadline=None)
@given(
    teacher=st.lists(windows(), min_size=1, max_size=4),
    parent=st.lists(windows(), min_size=1, max_size=4),
    busy_offsets=st.lists(st.tuples(st.integers(0, 14 * 96), st.integers(1, 8)), max_size=6),
    closed_day=st.integers(0, 13),
    minutes=st.sampled_from([30, 45, 60]),
)
def test_every_slot_satisfies_every_rule(
    teacher: list[WeeklyWindow],
    parent: list[WeeklyWindow],
    busy_offsets: list[tuple[int, int]],
    closed_day: int,
    minutes: int,
) -> None:
    duration = timedelta(minutes=minutes)
    earliest = datetime(2025, 10, 27, 12, 7, tzinfo=VANCOUVER)
    horizon_end = earliest + timedelta(days=14)
    busy = [(earliest + q * timedelta(minutes=15), earliest + (q + n) * timedelta(minutes=15)) for q, n in busy_offsets]
    closures = [Closure(earliest.date() + timedelta(days=closed_day), earliest.date() + timedelta(days=closed_day))]
    slots = find_slots(teacher, parent, busy, closures, duration, earliest, horizon_end, VANCOUVER)
    assert [s for s, _ in slots] == sorted({s for s, _ in slots})
    for start, end in slots:
        local_start, local_end = start.astimezone(VANCOUVER), end.astimezone(VANCOUVER)
        assert earliest <= start
        assert end <= horizon_end
        assert end - start == duration
        assert local_start.minute % 15 == 0
        assert not is_closed(local_start.date(), closures)
        # Back-to-back windows are one stretch of time (08:00-08:15 + 08:15-08:30 holds a 30-minute lesson).
        for windows_of_one_side in (teacher, parent):
            assert any(
                w.weekday == local_start.weekday() and w.contains(local_start.time(), local_end.time())
                for w in merge_windows(windows_of_one_side)
            )
        assert not any(overlaps(start, end, b_start, b_end) for b_start, b_end in busy)
