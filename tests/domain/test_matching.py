from dataclasses import replace
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import WeeklyWindow
from domain.matching import TeacherCandidate, is_eligible, rank_teachers

MONDAY, TUESDAY = 0, 1
PREFERRED = [WeeklyWindow(MONDAY, time(16), time(18))]
SOON = datetime(2025, 10, 6, 23, 0, tzinfo=UTC)
LATER = datetime(2025, 10, 13, 23, 0, tzinfo=UTC)


def teacher(teacher_id: str, **changes: object) -> TeacherCandidate:
    base = TeacherCandidate(
        teacher_id=teacher_id,
        instruments=frozenset({"piano"}),
        active=True,
        capacity=10,
        active_students=5,
        availability=[WeeklyWindow(MONDAY, time(15), time(19))],
        earliest_slot=SOON,
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def ranked_ids(candidates: list[TeacherCandidate], instrument: str = "piano") -> list[str]:
    return [c.teacher_id for c in rank_teachers(candidates, instrument, PREFERRED)]


def test_only_eligible_teachers_are_ranked() -> None:
    candidates = [
        teacher("ok"),
        teacher("guitarist", instruments=frozenset({"guitar"})),
        teacher("inactive", active=False),
        teacher("full", capacity=5, active_students=5),
        teacher("no-capacity", capacity=0, active_students=0),
        teacher("tuesdays", availability=[WeeklyWindow(TUESDAY, time(15), time(19))]),
        teacher("touching", availability=[WeeklyWindow(MONDAY, time(14), time(16))]),
    ]
    assert ranked_ids(candidates) == ["ok"]


def test_one_seat_left_is_still_eligible() -> None:
    assert ranked_ids([teacher("last-seat", capacity=6, active_students=5)]) == ["last-seat"]


def test_instrument_is_matched_case_insensitively() -> None:
    assert ranked_ids([teacher("a", instruments=frozenset({"Piano", "Bass"}))], "BASS") == ["a"]


def test_parent_without_preferred_windows_matches_nobody() -> None:
    assert rank_teachers([teacher("a")], "piano", []) == []
    assert not is_eligible(teacher("a"), "piano", [])


def test_lowest_load_ratio_comes_first() -> None:
    candidates = [
        teacher("half", capacity=10, active_students=5),
        teacher("quarter", capacity=20, active_students=5),
        teacher("empty", capacity=3, active_students=0),
    ]
    assert ranked_ids(candidates) == ["empty", "quarter", "half"]


def test_equal_ratio_prefers_fewer_students_exactly() -> None:
    candidates = [
        teacher("two-of-six", capacity=6, active_students=2),
        teacher("one-of-three", capacity=3, active_students=1),
    ]
    assert ranked_ids(candidates) == ["one-of-three", "two-of-six"]


def test_equal_load_prefers_the_earliest_slot_and_none_comes_last() -> None:
    candidates = [
        teacher("no-slot", earliest_slot=None),
        teacher("later", earliest_slot=LATER),
        teacher("soon", earliest_slot=SOON),
    ]
    assert ranked_ids(candidates) == ["soon", "later", "no-slot"]


def test_slots_in_different_zones_compare_as_instants() -> None:
    vancouver_15h = datetime(2025, 10, 6, 15, 0, tzinfo=ZoneInfo("America/Vancouver"))  # 22:00 UTC
    candidates = [teacher("utc-23h", earliest_slot=SOON), teacher("local-15h", earliest_slot=vancouver_15h)]
    assert ranked_ids(candidates) == ["local-15h", "utc-23h"]


def test_full_tie_is_broken_by_teacher_id_whatever_the_input_order() -> None:
    candidates = [teacher("t-b"), teacher("t-c"), teacher("t-a")]
    assert ranked_ids(candidates) == ["t-a", "t-b", "t-c"]
    assert ranked_ids(list(reversed(candidates))) == ["t-a", "t-b", "t-c"]
    no_slots = [teacher(i, earliest_slot=None) for i in ("t-2", "t-1")]
    assert ranked_ids(no_slots) == ["t-1", "t-2"]


def test_load_outranks_an_earlier_slot() -> None:
    candidates = [
        teacher("busy-but-soon", active_students=8, earliest_slot=SOON),
        teacher("free-but-later", active_students=2, earliest_slot=LATER),
    ]
    assert ranked_ids(candidates) == ["free-but-later", "busy-but-soon"]


def test_candidate_validation() -> None:
    with pytest.raises(ValueError, match="active_students cannot be negative"):
        teacher("negative", active_students=-1)
    with pytest.raises(ValueError, match="earliest_slot must be a timezone-aware datetime"):
        teacher("naive-slot", earliest_slot=datetime(2025, 10, 6, 16))
    assert isinstance(teacher("a").availability, tuple)
