import itertools
from datetime import date

import pytest

from domain.enrollment_rules import (
    ALLOWED_TRANSITIONS,
    CLOSED_STATES,
    TERMINAL_STATES,
    EnrollmentAction,
    EnrollmentState,
    TransitionRefused,
    age_on,
    can_accept,
    can_transition,
    check_age,
    move_needed,
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
    with pytest.raises(ValueError, match="before the date of birth"):
        age_on(BORN, date(2015, 6, 14))


def test_check_age_bounds_are_inclusive() -> None:
    fourth_birthday = date(2019, 6, 15)
    assert check_age(BORN, fourth_birthday, 4, 18) is None
    too_young = check_age(BORN, date(2019, 6, 14), 4, 18)
    assert too_young is not None
    assert "at least 4" in too_young
    assert check_age(BORN, date(2034, 6, 14), 4, 18) is None  # 18, the day before turning 19
    too_old = check_age(BORN, date(2034, 6, 15), 4, 18)
    assert too_old is not None
    assert "at most 18" in too_old


def test_check_age_reports_a_future_birth_date() -> None:
    message = check_age(date(2030, 1, 1), date(2025, 1, 1), 4, 18)
    assert message is not None
    assert "future" in message


def test_check_age_refuses_inverted_bounds() -> None:
    with pytest.raises(ValueError, match="min_age 18 is above max_age 4"):
        check_age(BORN, date(2025, 1, 1), 18, 4)


def test_terminal_states() -> None:
    assert TERMINAL_STATES == {S.ACTIVE, S.WITHDRAWN, S.CANCELLED, S.FAILED, S.COMPLETED}


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
        assert isinstance(reason, str)
        assert reason


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
        for current, target in itertools.pairwise(path):
            assert can_transition(current, target) is None, (current, target)


def test_closed_states_go_nowhere_and_others_can_always_cancel_or_fail() -> None:
    assert CLOSED_STATES == {S.WITHDRAWN, S.CANCELLED, S.FAILED, S.COMPLETED}
    for state in EnrollmentState:
        if state in CLOSED_STATES:
            assert ALLOWED_TRANSITIONS[state] == frozenset()
            assert can_transition(state, S.CANCELLED) == f"the enrollment is already {state.value}"
        else:
            assert {S.CANCELLED, S.FAILED} <= ALLOWED_TRANSITIONS[state]


def test_an_active_enrollment_can_still_be_cancelled_but_not_withdrawn() -> None:
    assert ALLOWED_TRANSITIONS[S.ACTIVE] == {S.CANCELLED, S.FAILED, S.COMPLETED}
    assert can_transition(S.ACTIVE, S.WITHDRAWN) == "an enrollment cannot go from active to withdrawn"


def test_a_no_show_without_a_slot_goes_back_to_the_waitlist() -> None:
    assert can_transition(S.AWAITING_OUTCOME, S.WAITLISTED) is None
    assert can_transition(S.DEMO_SCHEDULED, S.WAITLISTED) is None


def test_family_confirmation_path_is_allowed() -> None:
    path = [S.RECEIVED, S.VALIDATED, S.AWAITING_CONFIRMATION, S.ACCOUNT_CREATED]
    for current, target in itertools.pairwise(path):
        assert can_transition(current, target) is None, (current, target)


def test_skipping_steps_is_refused() -> None:
    assert can_transition(S.RECEIVED, S.ACTIVE) == "an enrollment cannot go from received to active"
    assert can_transition(S.WAITLISTED, S.DEMO_SCHEDULED) is not None
    assert can_transition(S.RECEIVED, S.AWAITING_CONFIRMATION) is not None


def test_move_needed_applies_allowed_moves() -> None:
    assert move_needed(S.VALIDATED, S.ACCOUNT_CREATED) is True
    assert move_needed("demo_scheduled", "awaiting_outcome", ["received"]) is True


def test_move_needed_is_a_no_op_for_the_same_state() -> None:
    assert move_needed(S.DEMO_SCHEDULED, S.DEMO_SCHEDULED) is False
    assert move_needed(S.CANCELLED, S.CANCELLED) is False


def test_move_needed_ignores_a_step_run_again_after_the_enrollment_moved_on() -> None:
    visited = [S.RECEIVED, S.VALIDATED, S.ACCOUNT_CREATED, S.TEACHER_ASSIGNED, S.DEMO_SCHEDULED]
    assert move_needed(S.DEMO_SCHEDULED, S.ACCOUNT_CREATED, visited) is False
    assert move_needed(S.DEMO_SCHEDULED, S.VALIDATED, visited) is False


def test_move_needed_refuses_an_illegal_move() -> None:
    with pytest.raises(TransitionRefused, match="cannot go from received to active"):
        move_needed(S.RECEIVED, S.ACTIVE, [S.RECEIVED])
    with pytest.raises(TransitionRefused, match="already withdrawn"):
        move_needed(S.WITHDRAWN, S.ACTIVE, [S.RECEIVED, S.DEMO_SCHEDULED, S.WITHDRAWN])
    # Going back to a state never visited is refused too.
    with pytest.raises(TransitionRefused):
        move_needed(S.DEMO_SCHEDULED, S.AWAITING_CONFIRMATION, [S.RECEIVED, S.VALIDATED, S.ACCOUNT_CREATED])
