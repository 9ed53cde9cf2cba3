from datetime import date

import pytest

from domain.enrollment_rules import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATES,
    EnrollmentAction,
    EnrollmentState,
    age_on,
    can_accept,
    can_transition,
    check_age,
)

S = EnrollmentState
BORN = date(2015, 6, 15)


@pytest.mark.parametrize(
    ("on", "age"),
    [
        (date(2015, 6, 15), 0),
        (date(2025, 6, 14), 9),
        (date(2025, 6, 15), 10),
        (date(2025, 12, 31), 10),
    ],
)
def test_age_counts_completed_years(on: date, age: int) -> None:
    assert age_on(BORN, on) == age


def test_leap_day_birthday_turns_over_on_march_first_in_common_years() -> None:
    leap_born = date(2016, 2, 29)
    assert age_on(leap_born, date(2023, 2, 28)) == 6
    assert age_on(leap_born, date(2023, 3, 1)) == 7
    assert age_on(leap_born, date(2024, 2, 29)) == 8


def test_age_before_birth_is_refused() -> None:
    with pytest.raises(ValueError):
        age_on(BORN, date(2015, 6, 14))


def test_check_age_bounds_are_inclusive() -> None:
    fourth_birthday = date(2019, 6, 15)
    assert check_age(BORN, fourth_birthday, 4, 18) is None
    too_young = check_age(BORN, date(2019, 6, 14), 4, 18)
    assert too_young is not None and "at least 4" in too_young
    assert check_age(BORN, date(2034, 6, 14), 4, 18) is None  # 18, the day before turning 19
    too_old = check_age(BORN, date(2034, 6, 15), 4, 18)
    assert too_old is not None and "at most 18" in too_old


def test_check_age_reports_a_future_birth_date() -> None:
    message = check_age(date(2030, 1, 1), date(2025, 1, 1), 4, 18)
    assert message is not None and "future" in message


def test_check_age_refuses_inverted_bounds() -> None:
    with pytest.raises(ValueError):
        check_age(BORN, date(2025, 1, 1), 18, 4)


def test_terminal_states() -> None:
    assert TERMINAL_STATES == {S.ACTIVE, S.WITHDRAWN, S.CANCELLED, S.FAILED}


def test_states_are_strings_for_storage_and_temporal_payloads() -> None:
    assert S.DEMO_SCHEDULED == "demo_scheduled"
    assert f"{S.AWAITING_OUTCOME}" == "awaiting_outcome"


ACCEPTED = {
    EnrollmentAction.DEMO_OUTCOME: {S.DEMO_SCHEDULED, S.AWAITING_OUTCOME},
    EnrollmentAction.CANCEL: set(EnrollmentState) - TERMINAL_STATES,
    EnrollmentAction.ASSIGN_TEACHER: {S.WAITLISTED},
    EnrollmentAction.CONFIRM_FAMILY: {S.AWAITING_CONFIRMATION},
}


@pytest.mark.parametrize("state", list(EnrollmentState))
@pytest.mark.parametrize("action", list(EnrollmentAction))
def test_can_accept_table(state: EnrollmentState, action: EnrollmentAction) -> None:
    reason = can_accept(state, action)
    if state in ACCEPTED[action]:
        assert reason is None
    else:
        assert isinstance(reason, str) and reason


def test_cancel_is_refused_once_terminal_with_a_clear_reason() -> None:
    assert can_accept(S.CANCELLED, EnrollmentAction.CANCEL) == "the enrollment is already cancelled"


def test_can_accept_takes_plain_strings_and_names_unknown_ones() -> None:
    assert can_accept("waitlisted", "assign_teacher") is None
    assert can_accept("waitlisted", "teleport") == "unknown action 'teleport'"
    assert can_accept("limbo", "cancel") == "unknown enrollment state 'limbo'"


def test_happy_path_and_waitlist_path_are_allowed_transitions() -> None:
    paths = [
        [
            S.RECEIVED,
            S.VALIDATED,
            S.ACCOUNT_CREATED,
            S.TEACHER_ASSIGNED,
            S.DEMO_SCHEDULED,
            S.AWAITING_OUTCOME,
            S.ACTIVE,
        ],
        [S.ACCOUNT_CREATED, S.WAITLISTED, S.TEACHER_ASSIGNED, S.DEMO_SCHEDULED, S.WITHDRAWN],
        [S.AWAITING_OUTCOME, S.DEMO_SCHEDULED],
    ]
    for path in paths:
        for current, target in zip(path, path[1:], strict=False):
            assert can_transition(current, target) is None, (current, target)


def test_terminal_states_go_nowhere_and_others_can_always_cancel_or_fail() -> None:
    for state in EnrollmentState:
        if state in TERMINAL_STATES:
            assert ALLOWED_TRANSITIONS[state] == frozenset()
            assert can_transition(state, S.CANCELLED) is not None
        else:
            assert {S.CANCELLED, S.FAILED} <= ALLOWED_TRANSITIONS[state]


def test_skipping_steps_is_refused() -> None:
    assert can_transition(S.RECEIVED, S.ACTIVE) == "an enrollment cannot go from received to active"
    assert can_transition(S.WAITLISTED, S.DEMO_SCHEDULED) is not None
