from datetime import UTC, datetime, timedelta

import pytest

from domain.dunning import (
    HARD_DECLINE_CODES,
    DunningNotice,
    DunningPolicy,
    DunningState,
    NoticeKind,
    due_actions,
    is_hard_decline,
    is_worse,
    next_retry,
    next_transition,
    payment_failed_notice,
    state_for,
)

DAY = timedelta(days=1)
TICK = timedelta(microseconds=1)
POLICY = DunningPolicy(
    warning_after=3 * DAY,
    suspend_after=14 * DAY,
    cancel_after=21 * DAY,
    retry_offsets=[1 * DAY, 4 * DAY, 9 * DAY, 16 * DAY],
)
SINCE = datetime(2025, 10, 1, 9, 0, tzinfo=UTC)
S = DunningState


@pytest.mark.parametrize(
    ("elapsed", "state"),
    [
        (timedelta(0), S.CLEAR),
        (3 * DAY - TICK, S.CLEAR),
        (3 * DAY, S.WARNING),
        (14 * DAY - TICK, S.WARNING),
        (14 * DAY, S.SUSPENDED),
        (21 * DAY - TICK, S.SUSPENDED),
        (21 * DAY, S.CANCELLED),
        (400 * DAY, S.CANCELLED),
        (-DAY, S.CLEAR),  # an invoice stamped a little in the future (clock skew) is not overdue
    ],
)
def test_state_thresholds_are_inclusive(elapsed: timedelta, state: DunningState) -> None:
    assert state_for(SINCE, SINCE + elapsed, POLICY) is state


def test_nothing_unpaid_is_clear() -> None:
    assert state_for(None, SINCE, POLICY) is S.CLEAR


def test_state_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="now must be a timezone-aware datetime"):
        state_for(SINCE, datetime(2025, 10, 5), POLICY)
    with pytest.raises(ValueError, match="oldest_unpaid_since must be a timezone-aware datetime"):
        state_for(datetime(2025, 10, 1), SINCE, POLICY)


@pytest.mark.parametrize(
    ("elapsed", "transition_after"),
    [
        (timedelta(0), 3 * DAY),
        (3 * DAY - TICK, 3 * DAY),
        (3 * DAY, 14 * DAY),
        (14 * DAY, 21 * DAY),
        (-DAY, 3 * DAY),
    ],
)
def test_next_transition(elapsed: timedelta, transition_after: timedelta) -> None:
    assert next_transition(SINCE, SINCE + elapsed, POLICY) == SINCE + transition_after


def test_no_transition_when_nothing_is_unpaid_or_already_cancelled() -> None:
    assert next_transition(None, SINCE, POLICY) is None
    assert next_transition(SINCE, SINCE + 21 * DAY, POLICY) is None


def test_state_changes_exactly_at_next_transition() -> None:
    now = SINCE
    seen = [state_for(SINCE, now, POLICY)]
    while (moment := next_transition(SINCE, now, POLICY)) is not None:
        assert state_for(SINCE, moment - TICK, POLICY) is seen[-1]
        now = moment
        seen.append(state_for(SINCE, now, POLICY))
    assert seen == [S.CLEAR, S.WARNING, S.SUSPENDED, S.CANCELLED]


@pytest.mark.parametrize(
    ("last_attempt_after", "retry_after"),
    [(None, 1 * DAY), (1 * DAY, 4 * DAY), (4 * DAY, 9 * DAY), (9 * DAY, 16 * DAY)],
)
def test_retries_follow_the_offsets_from_the_first_failure(
    last_attempt_after: timedelta | None, retry_after: timedelta
) -> None:
    last_attempt = None if last_attempt_after is None else SINCE + last_attempt_after
    assert next_retry(SINCE, last_attempt, POLICY) == SINCE + retry_after


def test_offsets_passed_by_another_attempt_are_used_up_so_retries_never_burst() -> None:
    # A card update (or an admin's retry-now) on day 5 uses up the day-4 retry: the next is day 9, not day 4.
    assert next_retry(SINCE, SINCE + 5 * DAY, POLICY) == SINCE + 9 * DAY
    # An attempt exactly at an offset's moment uses that offset.
    assert next_retry(SINCE, SINCE + 4 * DAY, POLICY) == SINCE + 9 * DAY
    assert next_retry(SINCE, SINCE + 4 * DAY - TICK, POLICY) == SINCE + 4 * DAY


def test_retries_run_out() -> None:
    assert next_retry(SINCE, SINCE + 16 * DAY, POLICY) is None
    assert next_retry(SINCE, SINCE + 20 * DAY, POLICY) is None
    no_retries = DunningPolicy(3 * DAY, 14 * DAY, 21 * DAY, [])
    assert next_retry(SINCE, None, no_retries) is None


def test_next_retry_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="first_failed_at must be a timezone-aware datetime"):
        next_retry(datetime(2025, 10, 1), None, POLICY)
    with pytest.raises(ValueError, match="last_attempt_at must be a timezone-aware datetime"):
        next_retry(SINCE, datetime(2025, 10, 2), POLICY)


def test_is_worse_follows_clear_warning_suspended_cancelled() -> None:
    order = [S.CLEAR, S.WARNING, S.SUSPENDED, S.CANCELLED]
    for i, state in enumerate(order):
        for j, other in enumerate(order):
            assert is_worse(state, other) is (i > j)
    assert is_worse("suspended", "warning")


@pytest.mark.parametrize(
    ("warning", "suspend", "cancel", "offsets", "refusal"),
    [
        (0 * DAY, 14 * DAY, 21 * DAY, [], "0 < warning_after"),  # warning must be positive
        (3 * DAY, 3 * DAY, 21 * DAY, [], "warning_after < suspend_after"),  # thresholds must strictly increase
        (3 * DAY, 14 * DAY, 10 * DAY, [], "suspend_after < cancel_after"),
        (3 * DAY, 14 * DAY, 21 * DAY, [DAY, DAY], "strictly increasing"),  # offsets must strictly increase
        (3 * DAY, 14 * DAY, 21 * DAY, [4 * DAY, DAY], "strictly increasing"),
        (3 * DAY, 14 * DAY, 21 * DAY, [timedelta(0)], "must be positive"),
        (3 * DAY, 14 * DAY, 21 * DAY, [DAY, 21 * DAY], "before cancel_after"),  # a retry at cancellation is too late
    ],
)
def test_policy_validation(
    warning: timedelta, suspend: timedelta, cancel: timedelta, offsets: list[timedelta], refusal: str
) -> None:
    with pytest.raises(ValueError, match=refusal):
        DunningPolicy(warning, suspend, cancel, offsets)


def test_policy_with_test_sized_delays_is_valid() -> None:
    seconds = timedelta(seconds=1)
    policy = DunningPolicy(3 * seconds, 6 * seconds, 9 * seconds, [seconds, 2 * seconds])
    assert state_for(SINCE, SINCE + 6 * seconds, policy) is S.SUSPENDED
    assert isinstance(policy.retry_offsets, tuple)


@pytest.mark.parametrize(
    "code", ["lost_card", "stolen_card", "expired_card", "pickup_card", "fraudulent", " Stolen_Card "]
)
def test_hard_declines(code: str) -> None:
    assert is_hard_decline(code)


@pytest.mark.parametrize("code", ["insufficient_funds", "generic_decline", "processing_error", "", None])
def test_soft_or_missing_declines_are_retried(code: str | None) -> None:
    assert not is_hard_decline(code)


def test_hard_decline_codes_are_normalised_stripe_codes() -> None:
    assert {"lost_card", "stolen_card", "expired_card", "pickup_card"} <= HARD_DECLINE_CODES
    assert all(code == code.strip().lower() for code in HARD_DECLINE_CODES)


def keys(notices: list[DunningNotice]) -> list[str]:
    return [n.dedup_key for n in notices]


def test_failed_attempt_notice_is_keyed_by_invoice_kind_and_attempt() -> None:
    assert payment_failed_notice("in_1", 2).dedup_key == "in_1:payment_failed:2"
    assert keys(due_actions("in_1", S.CLEAR, S.CLEAR, failed_attempt=1)) == ["in_1:payment_failed:1"]
    with pytest.raises(ValueError, match="numbered from 1"):
        payment_failed_notice("in_1", 0)


@pytest.mark.parametrize(
    ("previous", "current", "expected"),
    [
        (S.CLEAR, S.WARNING, ["in_1:final_warning:0"]),
        (S.WARNING, S.SUSPENDED, ["in_1:suspended:0"]),
        (S.SUSPENDED, S.CANCELLED, ["in_1:cancelled:0"]),
        (S.CLEAR, S.SUSPENDED, ["in_1:suspended:0"]),  # a jump sends only the current state's notice
        (S.CLEAR, S.CANCELLED, ["in_1:cancelled:0"]),
        (S.WARNING, S.CLEAR, ["in_1:recovered:0"]),
        (S.SUSPENDED, S.CLEAR, ["in_1:recovered:0"]),
        (S.SUSPENDED, S.WARNING, []),  # still in arrears on a younger invoice
        (S.CANCELLED, S.CLEAR, []),  # cancellation is final
        (S.WARNING, S.WARNING, []),
        (S.CLEAR, S.CLEAR, []),
    ],
)
def test_transition_notices(previous: DunningState, current: DunningState, expected: list[str]) -> None:
    assert keys(due_actions("in_1", previous, current)) == expected


def test_failure_notice_comes_before_the_state_notice() -> None:
    notices = due_actions("in_9", S.CLEAR, S.WARNING, failed_attempt=3)
    assert [n.kind for n in notices] == [NoticeKind.PAYMENT_FAILED, NoticeKind.FINAL_WARNING]
    assert keys(notices) == ["in_9:payment_failed:3", "in_9:final_warning:0"]
