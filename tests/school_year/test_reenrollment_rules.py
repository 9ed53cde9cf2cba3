"""Re-enrollment's rules without a server: the next semester, which semesters open, the reminder, the default,
and the weekly slot offered in the next semester."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from core.contracts.reenrollment import parse_reenrollment_id, reenrollment_workflow_id
from domain.calendar import Closure, Term, WeeklyWindow, local_to_utc
from domain.reenrollment import (
    OfferedSlot,
    ReenrollmentDefault,
    SemesterDates,
    choose_slot,
    decided_returning,
    default_deadline,
    next_semester,
    reminder_at,
    semesters_to_open,
)

VANCOUVER = ZoneInfo("America/Vancouver")
MONDAY, WEDNESDAY = 0, 2
HALF_HOUR = timedelta(minutes=30)
FALL = SemesterDates(uuid.uuid4(), date(2026, 9, 8), date(2027, 1, 31))
SPRING = SemesterDates(uuid.uuid4(), date(2027, 2, 1), date(2027, 6, 20))
SUMMER = SemesterDates(uuid.uuid4(), date(2027, 7, 6), date(2027, 8, 22))
NEXT_FALL = SemesterDates(uuid.uuid4(), date(2027, 9, 7), date(2028, 1, 30))
SPRING_TERM = Term(SPRING.start, SPRING.end, [Closure(date(2027, 3, 15), date(2027, 3, 28))])
BEFORE_SPRING = datetime(2027, 1, 15, tzinfo=UTC)
MAYA = [WeeklyWindow(MONDAY, time(15), time(20)), WeeklyWindow(WEDNESDAY, time(15), time(20))]


def test_the_next_semester_is_the_first_to_start_after_the_end_even_in_the_next_year() -> None:
    semesters = [NEXT_FALL, SUMMER, SPRING, FALL]
    assert next_semester(semesters, FALL) == SPRING
    assert next_semester(semesters, SPRING) == SUMMER
    assert next_semester(semesters, SUMMER) == NEXT_FALL  # the end of the school year opens the next one
    assert next_semester(semesters, NEXT_FALL) is None


def test_semesters_open_within_the_lead_time_before_their_end_and_only_with_a_next_one() -> None:
    semesters = [FALL, SPRING, SUMMER]
    four_weeks = timedelta(days=28)
    assert semesters_to_open(semesters, date(2027, 1, 3), four_weeks) == [(FALL, SPRING)]
    assert semesters_to_open(semesters, date(2027, 1, 2), four_weeks) == []  # too early
    assert semesters_to_open(semesters, date(2027, 2, 1), four_weeks) == []  # Fall is over
    assert semesters_to_open(semesters, date(2027, 8, 1), four_weeks) == []  # no year after the summer yet
    assert semesters_to_open([*semesters, NEXT_FALL], date(2027, 8, 1), four_weeks) == [(SUMMER, NEXT_FALL)]


def test_the_reminder_comes_before_the_deadline_unless_that_moment_has_passed() -> None:
    now = datetime(2027, 1, 1, tzinfo=UTC)
    deadline = now + timedelta(days=14)
    assert reminder_at(now, deadline, timedelta(days=3)) == deadline - timedelta(days=3)
    assert reminder_at(now, deadline, timedelta(days=20)) is None
    assert reminder_at(now, deadline, timedelta(0)) is None
    with pytest.raises(ValueError, match="aware"):
        reminder_at(datetime(2027, 1, 1), deadline, timedelta(days=3))


def test_an_answer_wins_over_the_default_and_the_default_decides_the_unanswered() -> None:
    assert decided_returning(True, "end") is True
    assert decided_returning(False, ReenrollmentDefault.return_) is False
    assert decided_returning(None, "return") is True
    assert decided_returning(None, "end") is False


def test_the_same_weekday_and_time_is_offered_when_free_in_the_next_semester() -> None:
    slot = choose_slot(MONDAY, time(16), HALF_HOUR, SPRING_TERM, MAYA, [], VANCOUVER, BEFORE_SPRING)
    assert slot == OfferedSlot(MONDAY, time(16), same_as_now=True)


def test_a_taken_week_moves_the_offer_to_the_nearest_free_slot() -> None:
    taken = local_to_utc(date(2027, 4, 12), time(16), VANCOUVER)  # one Monday of the spring, 16:00 local
    slot = choose_slot(
        MONDAY, time(16), HALF_HOUR, SPRING_TERM, MAYA, [(taken, taken + HALF_HOUR)], VANCOUVER, BEFORE_SPRING
    )
    assert slot == OfferedSlot(MONDAY, time(15, 30), same_as_now=False)  # 30 minutes away; earlier on a tie


def test_a_time_outside_the_teachers_new_availability_moves_to_the_nearest_window() -> None:
    only_wednesday = [WeeklyWindow(WEDNESDAY, time(17), time(19))]
    slot = choose_slot(MONDAY, time(16), HALF_HOUR, SPRING_TERM, only_wednesday, [], VANCOUVER, BEFORE_SPRING)
    assert slot == OfferedSlot(WEDNESDAY, time(17), same_as_now=False)
    # Around the week: Sunday evening is nearer to Monday 9:00 than Wednesday.
    windows = [WeeklyWindow(6, time(18), time(20)), WeeklyWindow(WEDNESDAY, time(9), time(10))]
    late = choose_slot(MONDAY, time(9), HALF_HOUR, SPRING_TERM, windows, [], VANCOUVER, BEFORE_SPRING)
    assert late == OfferedSlot(6, time(19, 30), same_as_now=False)


def test_no_free_slot_at_all_offers_nothing() -> None:
    spring_start = local_to_utc(SPRING.start, time(0), VANCOUVER)
    whole_term = [(spring_start, spring_start + timedelta(days=200))]
    assert choose_slot(MONDAY, time(16), HALF_HOUR, SPRING_TERM, MAYA, whole_term, VANCOUVER, BEFORE_SPRING) is None
    assert choose_slot(MONDAY, time(16), HALF_HOUR, SPRING_TERM, [], [], VANCOUVER, BEFORE_SPRING) is None


def test_the_offer_keeps_its_local_time_across_the_spring_daylight_change() -> None:
    slot = choose_slot(MONDAY, time(16), HALF_HOUR, SPRING_TERM, MAYA, [], VANCOUVER, BEFORE_SPRING)
    assert slot is not None
    # A lesson after the change (14 March 2027) is at 16:00 PDT: a booking at 16:00 PST would be taken by it.
    after_change = local_to_utc(date(2027, 4, 5), time(16), VANCOUVER)
    assert after_change.hour == 23
    moved = choose_slot(
        MONDAY,
        time(16),
        HALF_HOUR,
        SPRING_TERM,
        MAYA,
        [(after_change, after_change + HALF_HOUR)],
        VANCOUVER,
        BEFORE_SPRING,
    )
    assert moved is not None
    assert moved.start != time(16)


def test_a_reenrollment_id_names_the_family_and_the_semester() -> None:
    parent, semester = uuid.uuid4(), uuid.uuid4()
    assert parse_reenrollment_id(reenrollment_workflow_id(parent, semester)) == (parent, semester)
    assert parse_reenrollment_id(f"enrollment-{parent}") is None
    assert parse_reenrollment_id(f"reenrollment-{parent}-not-a-uuid-at-all-0000000000000000") is None


def test_the_default_deadline_comes_before_the_semester_ends() -> None:
    tz = ZoneInfo("America/Vancouver")
    fall = SemesterDates(uuid.uuid4(), date(2026, 9, 8), date(2027, 1, 31))
    opened_early = datetime(2026, 12, 1, 15, tzinfo=UTC)
    opened_late = datetime(2027, 1, 25, 15, tzinfo=UTC)
    after_the_end = datetime(2027, 2, 3, 15, tzinfo=UTC)

    assert default_deadline(opened_early, fall, timedelta(days=14), tz) == opened_early + timedelta(days=14)
    # Two weeks would run past the semester: the deadline is the end of its last day.
    assert default_deadline(opened_late, fall, timedelta(days=14), tz) == datetime(2027, 2, 1, tzinfo=tz)
    # Opened once the semester is over: the family still gets its two weeks.
    assert default_deadline(after_the_end, fall, timedelta(days=14), tz) == after_the_end + timedelta(days=14)
