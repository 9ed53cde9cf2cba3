"""Billing rules: sibling discounts, Stripe plan ids, trial ends and idempotency keys."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from domain.calendar import require_aware

__all__ = [
    "PLAN_INTERVALS",
    "STRIPE_KEY_MAX_LENGTH",
    "discounted_amount",
    "plan_id",
    "sibling_discount_percent",
    "stripe_key",
    "trial_end_for",
]

PLAN_INTERVALS = frozenset({"day", "week", "month", "year"})  # Stripe's recurring intervals
STRIPE_KEY_MAX_LENGTH = 255  # Stripe refuses longer Idempotency-Key headers
_SLUG = re.compile(r"[a-z0-9]+")


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
