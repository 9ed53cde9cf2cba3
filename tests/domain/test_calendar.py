import itertools
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import (
    Closure,
    Term,
    WeeklyWindow,
    genuine_zone,
    is_closed,
    local_to_utc,
    weekly_occurrences,
)

VANCOUVER = ZoneInfo("America/Vancouver")
MONDAY, WEDNESDAY = 0, 2
HALF_HOUR = timedelta(minutes=30)
FALL_TERM = Term(date(2025, 9, 2), date(2025, 12, 19))
TERM_START = datetime(2025, 9, 1, tzinfo=UTC)


def test_window_rejects_end_not_after_start() -> None:
    with pytest.raises(ValueError, match="must be after its start"):
        WeeklyWindow(MONDAY, time(16), time(16))
    with pytest.raises(ValueError, match="must be after its start"):
        WeeklyWindow(MONDAY, time(17), time(16))


@pytest.mark.parametrize("weekday", [-1, 7, True])
def test_window_rejects_bad_weekday(weekday: int) -> None:
    with pytest.raises(ValueError, match="weekday must be"):
        WeeklyWindow(weekday, time(15), time(16))


def test_window_rejects_aware_times() -> None:
    with pytest.raises(ValueError, match="must be naive"):
        WeeklyWindow(MONDAY, time(15, tzinfo=UTC), time(16, tzinfo=UTC))


def test_window_contains_its_edges_but_not_beyond() -> None:
    window = WeeklyWindow(MONDAY, time(15), time(17))
    assert window.contains(time(15), time(17))
    assert not window.contains(time(14, 45), time(15, 15))
    assert not window.contains(time(16, 45), time(17, 15))


def test_closure_and_term_reject_reversed_dates() -> None:
    with pytest.raises(ValueError, match=r"closure end .* is before its start"):
        Closure(date(2025, 10, 14), date(2025, 10, 13))
    with pytest.raises(ValueError, match=r"term end .* is before its start"):
        Term(date(2025, 12, 1), date(2025, 9, 1))


def test_is_closed_includes_both_ends_of_a_closure() -> None:
    winter_break = Closure(date(2025, 12, 22), date(2026, 1, 2), "winter break")
    assert not is_closed(date(2025, 12, 21), [winter_break])
    assert is_closed(date(2025, 12, 22), [winter_break])
    assert is_closed(date(2026, 1, 2), [winter_break])
    assert not is_closed(date(2026, 1, 3), [winter_break])
    assert not is_closed(date(2025, 12, 25), [])


def test_term_stores_closures_as_a_hashable_tuple() -> None:
    term = Term(date(2025, 9, 2), date(2025, 12, 19), [Closure(date(2025, 10, 13), date(2025, 10, 13))])
    assert isinstance(term.closures, tuple)
    assert hash(term) == hash(Term(term.start, term.end, tuple(term.closures)))


def test_lesson_keeps_local_time_across_the_november_dst_change() -> None:
    lessons = weekly_occurrences(FALL_TERM, WEDNESDAY, time(16), HALF_HOUR, VANCOUVER, TERM_START)
    by_local_day = {start.astimezone(VANCOUVER).date(): (start, end) for start, end in lessons}
    # 29 Oct is still PDT (UTC-7); 5 Nov is PST (UTC-8) after the change on 2 Nov 2025.
    assert by_local_day[date(2025, 10, 29)] == (
        datetime(2025, 10, 29, 23, 0, tzinfo=UTC),
        datetime(2025, 10, 29, 23, 30, tzinfo=UTC),
    )
    assert by_local_day[date(2025, 11, 5)] == (
        datetime(2025, 11, 6, 0, 0, tzinfo=UTC),
        datetime(2025, 11, 6, 0, 30, tzinfo=UTC),
    )
    assert {start.astimezone(VANCOUVER).time() for start, _ in lessons} == {time(16)}
    assert all(start.tzinfo is UTC for start, _ in lessons)


def test_lesson_keeps_local_time_across_the_march_dst_change() -> None:
    spring = Term(date(2026, 2, 23), date(2026, 3, 20))
    lessons = weekly_occurrences(spring, MONDAY, time(16), HALF_HOUR, VANCOUVER, TERM_START)
    starts = [start for start, _ in lessons]
    assert starts == [
        datetime(2026, 2, 24, 0, 0, tzinfo=UTC),  # 23 Feb 16:00 PST
        datetime(2026, 3, 3, 0, 0, tzinfo=UTC),  # 2 Mar 16:00 PST
        datetime(2026, 3, 9, 23, 0, tzinfo=UTC),  # 9 Mar 16:00 PDT (changed 8 Mar)
        datetime(2026, 3, 16, 23, 0, tzinfo=UTC),
    ]


def test_occurrences_cover_the_whole_term_weekly_and_skip_closures() -> None:
    thanksgiving = Closure(date(2025, 10, 13), date(2025, 10, 13), "Thanksgiving")
    term = Term(FALL_TERM.start, FALL_TERM.end, (thanksgiving,))
    lessons = weekly_occurrences(term, MONDAY, time(17), HALF_HOUR, VANCOUVER, TERM_START)
    days = [start.astimezone(VANCOUVER).date() for start, _ in lessons]
    assert days[0] == date(2025, 9, 8)  # the term starts on a Tuesday
    assert days[-1] == date(2025, 12, 15)
    assert date(2025, 10, 13) not in days
    assert len(days) == 14  # 15 Mondays in the term, one closed
    assert all(b - a in (timedelta(days=7), timedelta(days=14)) for a, b in itertools.pairwise(days))


def test_term_end_day_is_included() -> None:
    term = Term(date(2025, 9, 1), date(2025, 9, 15))
    lessons = weekly_occurrences(term, MONDAY, time(16), HALF_HOUR, VANCOUVER, TERM_START)
    assert [s.astimezone(VANCOUVER).date() for s, _ in lessons] == [
        date(2025, 9, 1),
        date(2025, 9, 8),
        date(2025, 9, 15),
    ]


def test_only_lessons_starting_at_or_after_from_are_returned() -> None:
    lesson_start = datetime(2025, 10, 29, 23, 0, tzinfo=UTC)
    from_exact = weekly_occurrences(FALL_TERM, WEDNESDAY, time(16), HALF_HOUR, VANCOUVER, lesson_start)
    assert from_exact[0][0] == lesson_start
    later = weekly_occurrences(
        FALL_TERM, WEDNESDAY, time(16), HALF_HOUR, VANCOUVER, lesson_start + timedelta(seconds=1)
    )
    assert later[0][0] == datetime(2025, 11, 6, 0, 0, tzinfo=UTC)
    after_term = weekly_occurrences(
        FALL_TERM, WEDNESDAY, time(16), HALF_HOUR, VANCOUVER, datetime(2026, 1, 1, tzinfo=UTC)
    )
    assert after_term == []


def test_occurrences_reject_naive_from_and_bad_arguments() -> None:
    with pytest.raises(ValueError, match="from_ must be a timezone-aware datetime"):
        weekly_occurrences(FALL_TERM, WEDNESDAY, time(16), HALF_HOUR, VANCOUVER, datetime(2025, 9, 1))
    with pytest.raises(ValueError, match="duration must be positive"):
        weekly_occurrences(FALL_TERM, WEDNESDAY, time(16), timedelta(0), VANCOUVER, TERM_START)
    with pytest.raises(ValueError, match="weekday must be"):
        weekly_occurrences(FALL_TERM, 7, time(16), HALF_HOUR, VANCOUVER, TERM_START)


def test_local_to_utc_resolves_ambiguous_and_missing_times() -> None:
    # 01:30 on 2 Nov 2025 happens twice; the first (PDT, UTC-7) is chosen.
    assert local_to_utc(date(2025, 11, 2), time(1, 30), VANCOUVER) == datetime(2025, 11, 2, 8, 30, tzinfo=UTC)
    # 02:30 on 9 Mar 2025 does not exist; it moves forward to 03:30 PDT.
    skipped = local_to_utc(date(2025, 3, 9), time(2, 30), VANCOUVER)
    assert skipped == datetime(2025, 3, 9, 10, 30, tzinfo=UTC)
    assert skipped.astimezone(VANCOUVER).time() == time(3, 30)


class SandboxLikeZoneProxy:
    """Mimics Temporal's workflow-sandbox proxy of a ZoneInfo: a foreign type that forwards ``__class__``."""

    def __init__(self, zone: ZoneInfo) -> None:
        self._zone = zone

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        return ZoneInfo

    @property
    def key(self) -> str:
        return self._zone.key


def test_genuine_zone_unwraps_a_sandbox_proxy_and_keeps_a_real_zone() -> None:
    assert genuine_zone(VANCOUVER) is VANCOUVER
    proxy = SandboxLikeZoneProxy(VANCOUVER)
    with pytest.raises(TypeError):
        datetime(2025, 11, 5, 16, tzinfo=proxy)  # type: ignore[arg-type]
    assert genuine_zone(proxy) is VANCOUVER  # type: ignore[arg-type]
    lessons = weekly_occurrences(FALL_TERM, WEDNESDAY, time(16), HALF_HOUR, proxy, TERM_START)  # type: ignore[arg-type]
    assert lessons[0][0] == datetime(2025, 9, 3, 23, 0, tzinfo=UTC)
