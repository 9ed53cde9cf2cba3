"""Cancellations and make-up credits: who earns a credit, when it expires and is reminded, what may be booked.

The school's policy (``MakeupPolicy``) comes from settings, overridden by the office's ``makeup_policy`` system
setting. A family cancelling before the notice cutoff earns a credit; later (or a no-show) the lesson is
forfeited; a teacher's or the school's cancellation always earns one. An excused absence is a family absence the
school accepts: it earns one credit, exactly once per lesson, which marking the lesson otherwise afterwards voids
while it is unused (``attendance_credit``). A credit is used exactly once, before it
expires; the office may extend it (forward only) or void it while it is available.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class CancelledBy(StrEnum):
    family = "family"
    teacher = "teacher"
    school = "school"


class Outcome(StrEnum):
    credit = "credit"
    forfeited = "forfeited"


class CreditStatus(StrEnum):
    available = "available"
    used = "used"
    expired = "expired"
    void = "void"


CLOSED_CREDIT_STATUSES = frozenset({CreditStatus.used, CreditStatus.expired, CreditStatus.void})


@dataclass(frozen=True)
class MakeupPolicy:
    # A family cancelling at least this long before the lesson earns a credit.
    cancel_notice: timedelta
    # How long a credit can be used.
    credit_lifetime: timedelta
    # The family is reminded this long before the credit expires (zero: no reminder).
    reminder_before: timedelta
    # A make-up starts no sooner than this from now, and no later than ``booking_horizon`` from now.
    booking_min_notice: timedelta
    booking_horizon: timedelta
    # Whether a make-up may be booked with any teacher of the instrument, not only the student's own.
    any_teacher: bool = False

    def __post_init__(self) -> None:
        for name in ("cancel_notice", "credit_lifetime", "reminder_before", "booking_min_notice", "booking_horizon"):
            if getattr(self, name) < timedelta(0):
                raise ValueError(f"{name} must not be negative")
        if self.credit_lifetime <= timedelta(0):
            raise ValueError("credit_lifetime must be positive")
        if self.booking_horizon <= self.booking_min_notice:
            raise ValueError("booking_horizon must be longer than booking_min_notice")


def cancellation_outcome(by: CancelledBy, starts_at: datetime, now: datetime, policy: MakeupPolicy) -> Outcome:
    """A family's cancellation earns a credit up to ``cancel_notice`` before the lesson; a teacher's or the
    school's always does."""
    if by != CancelledBy.family:
        return Outcome.credit
    return Outcome.credit if now <= starts_at - policy.cancel_notice else Outcome.forfeited


def no_show_outcome() -> Outcome:
    """A student who does not come forfeits the lesson."""
    return Outcome.forfeited


def attendance_outcome(excused: bool) -> Outcome:
    """An excused absence earns a credit; an unexcused one (absent) is forfeited, as a no-show."""
    return Outcome.credit if excused else Outcome.forfeited


class CreditAction(StrEnum):
    """What marking a lesson's attendance does to the lesson's make-up credit."""

    earn = "earn"  # excused, no credit yet: create it (one per lesson)
    keep = "keep"  # nothing to do (excused again, or not excused and no open credit)
    void = "void"  # no longer excused: void the unused credit
    refuse_used = "refuse_used"  # no longer excused, but the credit paid for a make-up already
    refuse_voided = "refuse_voided"  # excused again, but the lesson's one credit was voided


def attendance_credit(excused: bool, credit_status: str | None) -> CreditAction:
    """The lesson's credit after marking it excused (``excused``) or present, late or absent, given the status of
    the credit it earned before (None: none)."""
    if excused:
        if credit_status is None:
            return CreditAction.earn
        return CreditAction.refuse_voided if credit_status == CreditStatus.void else CreditAction.keep
    if credit_status == CreditStatus.available:
        return CreditAction.void
    if credit_status == CreditStatus.used:
        return CreditAction.refuse_used
    return CreditAction.keep


def credit_expiry(granted_at: datetime, policy: MakeupPolicy) -> datetime:
    return granted_at + policy.credit_lifetime


def reminder_at(expires_at: datetime, reminder_before: timedelta) -> datetime | None:
    """When the expiry reminder is due, or None when the school sends none."""
    return expires_at - reminder_before if reminder_before > timedelta(0) else None


def booking_window(now: datetime, policy: MakeupPolicy) -> tuple[datetime, datetime]:
    """[earliest, latest) start of a make-up booked now."""
    return now + policy.booking_min_notice, now + policy.booking_horizon


def booking_problem(starts_at: datetime, now: datetime, policy: MakeupPolicy) -> str | None:
    """Why a make-up cannot start at ``starts_at`` (outside the school's horizon), or None."""
    earliest, latest = booking_window(now, policy)
    if starts_at < earliest:
        return f"must start at or after {earliest.isoformat()}"
    if starts_at >= latest:
        return f"must start before {latest.isoformat()} (the school's booking horizon)"
    return None


def credit_problem(status: str, expires_at: datetime, now: datetime) -> str | None:
    """Why a credit cannot be used now, or None."""
    if status == CreditStatus.used:
        return "the credit is already used"
    if status != CreditStatus.available:
        return f"the credit is {status}"
    if now >= expires_at:
        return "the credit has expired"
    return None


def extension_problem(status: str, by: timedelta) -> str | None:
    """Why the office cannot extend a credit by ``by``, or None."""
    if by <= timedelta(0):
        return "must be positive"
    if status != CreditStatus.available:
        return f"the credit is {status}; only an available credit can be extended"
    return None


def void_problem(status: str) -> str | None:
    if status != CreditStatus.available:
        return f"the credit is {status}; only an available credit can be voided"
    return None
