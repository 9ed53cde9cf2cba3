"""Billing rules: sibling discounts, Stripe plan ids, trial ends, idempotency keys, how an invoice's mirrored
status moves, and each lesson's share of its subscription."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from domain.calendar import require_aware

__all__ = [
    "INVOICE_RANK",
    "MONTHLY_LESSONS",
    "PLAN_INTERVALS",
    "STRIPE_KEY_MAX_LENGTH",
    "discounted_amount",
    "invoice_status_after",
    "lesson_share",
    "mirrored_invoice_status",
    "plan_id",
    "sibling_discount_percent",
    "stripe_key",
    "trial_end_for",
]

PLAN_INTERVALS = frozenset({"day", "week", "month", "year"})  # Stripe's recurring intervals
STRIPE_KEY_MAX_LENGTH = 255  # Stripe refuses longer Idempotency-Key headers
_SLUG = re.compile(r"[a-z0-9]+")
# How far along an invoice is in our mirror; a re-read or replayed event never moves it back.
# `past_due` is Stripe's `open` after a failed attempt: the family owes it and dunning is running.
INVOICE_RANK = {"draft": 0, "open": 1, "past_due": 2, "paid": 3, "void": 3, "uncollectible": 3}
MONTHLY_LESSONS = 4  # a monthly plan bills four weekly lessons (scripts/reference_data.py)


def _require_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer ≥ {minimum}, got {value!r}")


def sibling_discount_percent(child_index: int, percent: int) -> int:
    """The discount of a family's child: 0 for the first (index 0), ``percent`` for the second and later.

    ``child_index`` is the child's 0-based place among the family's enrolled children.
    """
    _require_int("child_index", child_index, 0)
    _require_int("percent", percent, 0)
    if percent > 100:
        raise ValueError(f"a discount cannot exceed 100 %, got {percent}")
    return 0 if child_index == 0 else percent


def discounted_amount(amount: int, percent: int) -> int:
    """``amount`` less ``percent`` %, rounded half up to a whole minor unit (in integers, no floats).

    12 345 at 10 % is 11 110.5 → 11 111: the family pays the extra half cent, never a fraction.
    """
    _require_int("amount", amount, 0)
    _require_int("percent", percent, 0)
    if percent > 100:
        raise ValueError(f"a discount cannot exceed 100 %, got {percent}")
    return (amount * (100 - percent) + 50) // 100


def plan_id(instrument: str, minutes: int, interval: str, amount: int) -> str:
    """The Stripe plan id for a lesson price, e.g. ``cedar-piano-30-month-12000``.

    Deterministic, so creating the plan twice finds the first one; a discounted price is its own plan.
    """
    slug = instrument.strip().lower()
    if not _SLUG.fullmatch(slug):
        raise ValueError(f"instrument must be letters and digits, got {instrument!r}")
    if interval not in PLAN_INTERVALS:
        raise ValueError(f"interval must be one of {sorted(PLAN_INTERVALS)}, got {interval!r}")
    _require_int("minutes", minutes, 1)
    _require_int("amount", amount, 0)
    return f"cedar-{slug}-{minutes}-{interval}-{amount}"


def trial_end_for(first_lesson_start: datetime) -> datetime:
    """When the subscription's free trial ends: at the first regular lesson, so billing starts with it.

    In UTC and truncated to the whole second, because Stripe takes a Unix timestamp in seconds.
    """
    require_aware(first_lesson_start, "first_lesson_start")
    return first_lesson_start.astimezone(UTC).replace(microsecond=0)


def _escape(part: str | int) -> str:
    # Escaping the separator keeps ("a:b", "c") and ("a", "b:c") apart.
    return str(part).replace("%", "%25").replace(":", "%3A")


def stripe_key(*parts: str | int) -> str:
    """An Idempotency-Key from the parts joined by ``:``, e.g. ``stripe_key("subscription", enr_id)``.

    Stable for the same parts. A key longer than 255 characters keeps its first 190 characters and ends
    with ``~`` and the SHA-256 of the whole key, so long keys stay distinct and readable.
    """
    if not parts:
        raise ValueError("an idempotency key needs at least one part")
    if any(isinstance(p, bool) or str(p) == "" for p in parts):
        raise ValueError(f"key parts must be non-empty strings or integers, got {parts!r}")
    key = ":".join(_escape(p) for p in parts)
    if len(key) <= STRIPE_KEY_MAX_LENGTH:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()
    return f"{key[: STRIPE_KEY_MAX_LENGTH - len(digest) - 1]}~{digest}"


def mirrored_invoice_status(stripe_status: str, has_failed: bool) -> str:
    """Our status for an invoice Stripe reports as ``stripe_status``: ``past_due`` for an open invoice that has had a
    failed attempt (the family owes it and dunning runs), else Stripe's own."""
    return "past_due" if stripe_status == "open" and has_failed else stripe_status


def invoice_status_after(current: str, reported: str) -> str:
    """The mirrored status once ``reported`` is seen: it only moves forward (:data:`INVOICE_RANK`), so a re-read or
    replayed event never moves an invoice back; among equals (paid, void, uncollectible) the first one stays."""
    return reported if INVOICE_RANK[reported] > INVOICE_RANK.get(current, 0) else current


def lesson_share(amount_minor: int, interval: str) -> int:
    """What one completed lesson earns of its subscription's ``amount_minor``: a weekly plan's whole amount, any
    other (monthly) plan's quarter (:data:`MONTHLY_LESSONS`), rounded down to the cent."""
    _require_int("amount_minor", amount_minor, 0)
    return amount_minor if interval == "week" else amount_minor // MONTHLY_LESSONS
