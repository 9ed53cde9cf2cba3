from datetime import UTC, datetime, timedelta

import pytest

from domain.makeups import (
    CancelledBy,
    CreditAction,
    CreditStatus,
    MakeupPolicy,
    Outcome,
    attendance_credit,
    attendance_outcome,
    booking_problem,
    cancellation_outcome,
    credit_expiry,
    credit_problem,
    extension_problem,
    no_show_outcome,
    reminder_at,
    void_problem,
)

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
POLICY = MakeupPolicy(
    cancel_notice=24 * HOUR,
    credit_lifetime=60 * DAY,
    reminder_before=7 * DAY,
    booking_min_notice=2 * HOUR,
    booking_horizon=28 * DAY,
)
LESSON = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)
TICK = timedelta(microseconds=1)


def test_a_family_cancelling_up_to_the_cutoff_earns_a_credit_and_after_it_forfeits() -> None:
    cutoff = LESSON - POLICY.cancel_notice
    assert cancellation_outcome(CancelledBy.family, LESSON, cutoff - DAY, POLICY) == Outcome.credit
    assert cancellation_outcome(CancelledBy.family, LESSON, cutoff, POLICY) == Outcome.credit
    assert cancellation_outcome(CancelledBy.family, LESSON, cutoff + TICK, POLICY) == Outcome.forfeited
    assert cancellation_outcome(CancelledBy.family, LESSON, LESSON + HOUR, POLICY) == Outcome.forfeited
    assert no_show_outcome() == Outcome.forfeited


@pytest.mark.parametrize("by", [CancelledBy.teacher, CancelledBy.school])
def test_a_teacher_or_school_cancellation_always_earns_a_credit(by: CancelledBy) -> None:
    assert cancellation_outcome(by, LESSON, LESSON - TICK, POLICY) == Outcome.credit
    assert cancellation_outcome(by, LESSON, LESSON + HOUR, POLICY) == Outcome.credit


def test_expiry_and_reminder() -> None:
    expires = credit_expiry(LESSON, POLICY)
    assert expires == LESSON + 60 * DAY
    assert reminder_at(expires, POLICY.reminder_before) == expires - 7 * DAY
    assert reminder_at(expires, timedelta(0)) is None


def test_a_makeup_must_start_within_the_horizon() -> None:
    now = LESSON
    assert booking_problem(now + 3 * HOUR, now, POLICY) is None
    assert booking_problem(now + HOUR, now, POLICY) is not None
    assert booking_problem(now + 28 * DAY, now, POLICY) is not None
    assert booking_problem(now + 28 * DAY - TICK, now, POLICY) is None


def test_a_credit_is_used_once_and_only_before_it_expires() -> None:
    expires = LESSON + DAY
    assert credit_problem(CreditStatus.available, expires, LESSON) is None
    assert credit_problem(CreditStatus.available, expires, expires) == "the credit has expired"
    assert credit_problem(CreditStatus.used, expires, LESSON) == "the credit is already used"
    assert credit_problem(CreditStatus.void, expires, LESSON) == "the credit is void"


def test_extensions_are_positive_and_only_for_available_credits() -> None:
    assert extension_problem(CreditStatus.available, DAY) is None
    assert extension_problem(CreditStatus.available, -DAY) == "must be positive"
    assert extension_problem(CreditStatus.available, timedelta(0)) == "must be positive"
    assert extension_problem(CreditStatus.used, DAY) is not None
    assert void_problem(CreditStatus.available) is None
    assert void_problem(CreditStatus.expired) is not None


def test_a_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="negative"):
        MakeupPolicy(-HOUR, DAY, HOUR, HOUR, DAY)
    with pytest.raises(ValueError, match="positive"):
        MakeupPolicy(HOUR, timedelta(0), HOUR, HOUR, DAY)
    with pytest.raises(ValueError, match="horizon"):
        MakeupPolicy(HOUR, DAY, HOUR, DAY, HOUR)


def test_an_excused_absence_earns_a_credit_and_an_unexcused_one_forfeits() -> None:
    assert attendance_outcome(excused=True) == Outcome.credit
    assert attendance_outcome(excused=False) == Outcome.forfeited == no_show_outcome()


@pytest.mark.parametrize(
    ("excused", "status", "action"),
    [
        (True, None, CreditAction.earn),
        (True, CreditStatus.available, CreditAction.keep),  # excused twice: still one credit
        (True, CreditStatus.used, CreditAction.keep),
        (True, CreditStatus.expired, CreditAction.keep),
        (True, CreditStatus.void, CreditAction.refuse_voided),  # one credit per lesson, ever
        (False, None, CreditAction.keep),
        (False, CreditStatus.available, CreditAction.void),
        (False, CreditStatus.used, CreditAction.refuse_used),
        (False, CreditStatus.expired, CreditAction.keep),
        (False, CreditStatus.void, CreditAction.keep),
    ],
)
def test_marking_attendance_earns_keeps_voids_or_refuses_the_lessons_one_credit(
    excused: bool, status: CreditStatus | None, action: CreditAction
) -> None:
    assert attendance_credit(excused, status) == action
