from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from domain.billing_rules import (
    INVOICE_RANK,
    MONTHLY_LESSONS,
    STRIPE_KEY_MAX_LENGTH,
    discounted_amount,
    invoice_status_after,
    lesson_share,
    mirrored_invoice_status,
    plan_id,
    sibling_discount_percent,
    stripe_key,
    trial_end_for,
)


@pytest.mark.parametrize(("child_index", "percent"), [(0, 0), (1, 10), (2, 10), (5, 10)])
def test_sibling_discount_starts_with_the_second_child(child_index: int, percent: int) -> None:
    assert sibling_discount_percent(child_index, 10) == percent


@pytest.mark.parametrize(
    ("child_index", "percent", "refusal"),
    [(-1, 10, "child_index must be"), (1, -5, "percent must be"), (1, 101, "cannot exceed 100")],
)
def test_sibling_discount_refuses_nonsense(child_index: int, percent: int, refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal):
        sibling_discount_percent(child_index, percent)


@pytest.mark.parametrize(
    ("amount", "percent", "expected"),
    [
        (12_000, 10, 10_800),
        (12_345, 10, 11_111),  # 11 110.5 rounds half up
        (12_344, 10, 11_110),  # 11 109.6 rounds up
        (12_341, 10, 11_107),  # 11 106.9 → 11 107
        (12_346, 10, 11_111),  # 11 111.4 rounds down
        (5, 10, 5),  # 4.5 → 5
        (12_000, 0, 12_000),
        (12_000, 100, 0),
        (0, 10, 0),
    ],
)
def test_discounted_amount_rounds_half_up(amount: int, percent: int, expected: int) -> None:
    assert discounted_amount(amount, percent) == expected


@pytest.mark.parametrize(
    ("amount", "percent", "refusal"),
    [(-1, 10, "amount must be"), (100, 101, "cannot exceed 100"), (100, -1, "percent must be")],
)
def test_discounted_amount_refuses_nonsense(amount: int, percent: int, refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal):
        discounted_amount(amount, percent)


def test_plan_id_is_deterministic_and_normalised() -> None:
    assert plan_id("piano", 30, "month", 12_000) == "cedar-piano-30-month-12000"
    assert plan_id(" Guitar ", 45, "week", 4_500) == "cedar-guitar-45-week-4500"
    assert plan_id("piano", 30, "month", 10_800) != plan_id("piano", 30, "month", 12_000)


@pytest.mark.parametrize(
    ("instrument", "minutes", "interval", "amount", "refusal"),
    [
        ("double bass", 30, "month", 1, "instrument must be"),
        ("", 30, "month", 1, "instrument must be"),
        ("piano", 0, "month", 1, "minutes must be"),
        ("piano", 30, "fortnight", 1, "interval must be"),
        ("piano", 30, "month", -1, "amount must be"),
    ],
)
def test_plan_id_refuses_bad_parts(instrument: str, minutes: int, interval: str, amount: int, refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal):
        plan_id(instrument, minutes, interval, amount)


def test_trial_ends_at_the_first_lesson_in_whole_utc_seconds() -> None:
    first_lesson = datetime(2025, 11, 3, 16, 0, 0, 500_000, tzinfo=ZoneInfo("America/Vancouver"))
    trial_end = trial_end_for(first_lesson)
    assert trial_end == datetime(2025, 11, 4, 0, 0, 0, tzinfo=UTC)
    assert trial_end.tzinfo is UTC
    assert trial_end.timestamp() == int(trial_end.timestamp())


def test_trial_end_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="must be a timezone-aware datetime"):
        trial_end_for(datetime(2025, 11, 3, 16, 0))


def test_stripe_key_joins_parts_stably() -> None:
    assert stripe_key("subscription", "enr_42", 3) == "subscription:enr_42:3"
    assert stripe_key("subscription", "enr_42", 3) == stripe_key("subscription", "enr_42", "3")


def test_stripe_key_keeps_separators_inside_parts_apart() -> None:
    assert stripe_key("a:b", "c") != stripe_key("a", "b:c")
    assert stripe_key("a%3Ab") != stripe_key("a:b")


def test_long_stripe_keys_are_hashed_to_the_limit_and_stay_distinct() -> None:
    prefix = "x" * 300
    first, second = stripe_key(prefix, "one"), stripe_key(prefix, "two")
    assert len(first) == len(second) == STRIPE_KEY_MAX_LENGTH
    assert first != second
    assert first == stripe_key(prefix, "one")
    assert first.startswith("x" * 190 + "~")
    assert len(stripe_key("y" * STRIPE_KEY_MAX_LENGTH)) == STRIPE_KEY_MAX_LENGTH
    assert stripe_key("y" * STRIPE_KEY_MAX_LENGTH) == "y" * STRIPE_KEY_MAX_LENGTH


@pytest.mark.parametrize(
    ("parts", "refusal"),
    [
        ((), "needs at least one part"),
        (("",), "must be non-empty"),
        (("a", ""), "must be non-empty"),
        ((True,), "must be non-empty"),
    ],
)
def test_stripe_key_refuses_empty_parts(parts: tuple[str, ...], refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal):
        stripe_key(*parts)


@pytest.mark.parametrize(
    ("stripe_status", "has_failed", "ours"),
    [
        ("open", False, "open"),
        ("open", True, "past_due"),
        ("paid", True, "paid"),
        ("void", False, "void"),
        ("uncollectible", True, "uncollectible"),
    ],
)
def test_an_open_invoice_with_a_failed_attempt_is_past_due(stripe_status: str, has_failed: bool, ours: str) -> None:
    assert mirrored_invoice_status(stripe_status, has_failed) == ours


@pytest.mark.parametrize(
    ("current", "reported", "after"),
    [
        ("draft", "open", "open"),
        ("open", "past_due", "past_due"),
        ("past_due", "open", "past_due"),  # a re-read of the open invoice never undoes the failure
        ("past_due", "paid", "paid"),
        ("paid", "open", "paid"),  # a replayed older event never moves it back
        ("paid", "void", "paid"),  # among final statuses the first one stays
        ("uncollectible", "void", "uncollectible"),
        ("", "draft", ""),  # a new row takes the first status that ranks above draft
        ("", "open", "open"),
    ],
)
def test_invoice_status_only_moves_forward(current: str, reported: str, after: str) -> None:
    assert invoice_status_after(current, reported) == after


def test_invoice_ranks_order_the_statuses() -> None:
    assert INVOICE_RANK["draft"] < INVOICE_RANK["open"] < INVOICE_RANK["past_due"] < INVOICE_RANK["paid"]
    assert INVOICE_RANK["paid"] == INVOICE_RANK["void"] == INVOICE_RANK["uncollectible"]


@pytest.mark.parametrize(
    ("amount", "interval", "share"),
    [(3000, "week", 3000), (12000, "month", 3000), (12001, "month", 3000), (0, "month", 0)],
)
def test_a_lesson_earns_its_share_of_the_plan(amount: int, interval: str, share: int) -> None:
    assert lesson_share(amount, interval) == share
    assert MONTHLY_LESSONS == 4
