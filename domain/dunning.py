"""Dunning, after Kill Bill: an account's state follows the age of its oldest unpaid invoice.

clear → warning → suspended → cancelled as that invoice ages past the policy's thresholds; paying it
moves the account back (to the state of the next-oldest unpaid invoice, usually clear). Failed payments
are retried at fixed offsets from the first failure, unless the decline is hard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from domain.calendar import require_aware

__all__ = [
    "AUTHENTICATION_REQUIRED",
    "HARD_DECLINE_CODES",
    "DunningNotice",
    "DunningPolicy",
    "DunningState",
    "NoticeKind",
    "due_actions",
    "is_hard_decline",
    "is_worse",
    "next_retry",
    "next_transition",
    "payment_failed_notice",
    "state_for",
]


class DunningState(StrEnum):
    CLEAR = "clear"
    WARNING = "warning"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"


_SEVERITY = {state: rank for rank, state in enumerate(DunningState)}


def is_worse(state: DunningState | str, than: DunningState | str) -> bool:
    """Whether ``state`` is further down clear → warning → suspended → cancelled than ``than``."""
    return _SEVERITY[DunningState(state)] > _SEVERITY[DunningState(than)]


@dataclass(frozen=True)
class DunningPolicy:
    """Thresholds measured from the oldest unpaid invoice, and retry offsets measured from its first failure.

    Requires 0 < warning_after < suspend_after < cancel_after, and strictly increasing positive retry
    offsets that all fall before cancel_after (a retry after cancellation would charge a closed account).
    """

    warning_after: timedelta
    suspend_after: timedelta
    cancel_after: timedelta
    retry_offsets: Sequence[timedelta] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        object.__setattr__(self, "retry_offsets", tuple(self.retry_offsets))
        if not timedelta(0) < self.warning_after < self.suspend_after < self.cancel_after:
            raise ValueError("dunning needs 0 < warning_after < suspend_after < cancel_after")
        previous = timedelta(0)
        for offset in self.retry_offsets:
            if offset <= previous:
                raise ValueError("retry offsets must be positive and strictly increasing")
            previous = offset
        if previous >= self.cancel_after:
            raise ValueError("every retry offset must fall before cancel_after")

    def thresholds(self) -> tuple[tuple[timedelta, DunningState], ...]:
        return (
            (self.warning_after, DunningState.WARNING),
            (self.suspend_after, DunningState.SUSPENDED),
            (self.cancel_after, DunningState.CANCELLED),
        )


def state_for(oldest_unpaid_since: datetime | None, now: datetime, policy: DunningPolicy) -> DunningState:
    """The state of an account whose oldest unpaid invoice has been unpaid since ``oldest_unpaid_since``.

    Each threshold is reached at exactly ``since + threshold`` (inclusive). None means nothing is unpaid.
    """
    require_aware(now, "now")
    if oldest_unpaid_since is None:
        return DunningState.CLEAR
    require_aware(oldest_unpaid_since, "oldest_unpaid_since")
    unpaid_for = now - oldest_unpaid_since
    state = DunningState.CLEAR
    for threshold, reached in policy.thresholds():
        if unpaid_for >= threshold:
            state = reached
    return state


def next_transition(oldest_unpaid_since: datetime | None, now: datetime, policy: DunningPolicy) -> datetime | None:
    """When the state next changes if nothing is paid: None when nothing is unpaid or already cancelled."""
    require_aware(now, "now")
    if oldest_unpaid_since is None:
        return None
    require_aware(oldest_unpaid_since, "oldest_unpaid_since")
    for threshold, _ in policy.thresholds():
        moment = oldest_unpaid_since + threshold
        if moment > now:
            return moment
    return None


def next_retry(first_failed_at: datetime, last_attempt_at: datetime | None, policy: DunningPolicy) -> datetime | None:
    """When to retry a failed invoice payment, or None when the retries are used up.

    Retries fall at ``first_failed_at + offset`` for each of the policy's offsets; the next one is the first such
    moment after the latest attempt (``last_attempt_at``, None: the original charge, at ``first_failed_at``). An
    offset that passed while another attempt was made (a card update, an admin's retry-now) is used up, so retries
    never burst. Callers skip retries for hard declines (:func:`is_hard_decline`), payments waiting for the bank's
    confirmation, and when Stripe owns retries.
    """
    require_aware(first_failed_at, "first_failed_at")
    latest = first_failed_at if last_attempt_at is None else last_attempt_at
    require_aware(latest, "last_attempt_at")
    for offset in policy.retry_offsets:
        if first_failed_at + offset > latest:
            return first_failed_at + offset
    return None


# Stripe's failure code when the bank wants the cardholder to confirm the payment (3-D Secure): only the parent
# can complete it, so it is neither retried nor a decline of the card.
AUTHENTICATION_REQUIRED = "authentication_required"

# Stripe decline codes that no retry will fix: the card is gone, blocked, or wrong. The customer must
# give a new payment method. Soft declines (insufficient_funds, generic_decline, …) are retried.
HARD_DECLINE_CODES: frozenset[str] = frozenset(
    {
        "card_not_supported",
        "currency_not_supported",
        "do_not_try_again",
        "expired_card",
        "fraudulent",
        "incorrect_number",
        "invalid_account",
        "invalid_number",
        "lost_card",
        "merchant_blacklist",
        "new_account_information_available",
        "pickup_card",
        "restricted_card",
        "revocation_of_all_authorizations",
        "revocation_of_authorization",
        "security_violation",
        "stolen_card",
        "stop_payment_order",
        "transaction_not_allowed",
    }
)


def is_hard_decline(decline_code: str | None) -> bool:
    """Whether a Stripe ``decline_code`` means retrying is pointless (None, an unknown code: no)."""
    return decline_code is not None and decline_code.strip().lower() in HARD_DECLINE_CODES


class NoticeKind(StrEnum):
    PAYMENT_FAILED = "payment_failed"
    FINAL_WARNING = "final_warning"
    SUSPENDED = "suspended"
    CANCELLED = "cancelled"
    RECOVERED = "recovered"


# Entering a worse state sends the notice of that state.
_NOTICE_ON_ENTERING = {
    DunningState.WARNING: NoticeKind.FINAL_WARNING,
    DunningState.SUSPENDED: NoticeKind.SUSPENDED,
    DunningState.CANCELLED: NoticeKind.CANCELLED,
}


@dataclass(frozen=True)
class DunningNotice:
    """An email (and for suspended/cancelled, an action on the lessons) that is due exactly once."""

    kind: NoticeKind
    invoice_id: str
    attempt: int

    @property
    def dedup_key(self) -> str:
        return f"{self.invoice_id}:{self.kind.value}:{self.attempt}"


def payment_failed_notice(invoice_id: str, attempt: int) -> DunningNotice:
    """The notice for the failure of payment attempt number ``attempt`` (1 = the original charge)."""
    if attempt < 1:
        raise ValueError("payment attempts are numbered from 1")
    return DunningNotice(NoticeKind.PAYMENT_FAILED, invoice_id, attempt)


def due_actions(
    invoice_id: str,
    previous: DunningState,
    current: DunningState,
    failed_attempt: int | None = None,
) -> list[DunningNotice]:
    """The notices due when the account goes from ``previous`` to ``current``.

    ``invoice_id`` is the invoice driving the change (the oldest unpaid one; for ``recovered``, the one just
    paid). ``failed_attempt`` is the number of a payment attempt that just failed, if any: it adds a
    ``payment_failed`` notice first. State notices carry attempt 0 because each happens at most once per
    driving invoice (its age only grows). Rules:

    * a worse state: the notice of the new state only — a sweep that jumps from clear to suspended sends
      ``suspended``, not a stale warning as well;
    * back to clear from warning or suspended: ``recovered``;
    * anything from cancelled, or a milder state that is not clear: nothing (cancelled is final; a milder
      non-clear state is still in arrears).
    """
    notices: list[DunningNotice] = []
    if failed_attempt is not None:
        notices.append(payment_failed_notice(invoice_id, failed_attempt))
    if previous == DunningState.CANCELLED or previous == current:
        return notices
    if is_worse(current, previous):
        notices.append(DunningNotice(_NOTICE_ON_ENTERING[current], invoice_id, 0))
    elif current == DunningState.CLEAR:
        notices.append(DunningNotice(NoticeKind.RECOVERED, invoice_id, 0))
    return notices
