"""Emails that anyone can make Cedar send without signing in, and how many one address may get a day."""

from __future__ import annotations

# The public enrollment form and the password-reset request send these to an address the requester typed:
# unbounded, they would let a stranger flood someone's mailbox from the school's domain.
PUBLIC_ACTION_TEMPLATES = frozenset(
    {
        "enrollment_welcome_parent",
        "enrollment_confirm_family",
        "enrollment_waitlisted",
        "enrollment_closed",
        "password_reset",
    }
)


def is_public_action(template: str) -> bool:
    return template in PUBLIC_ACTION_TEMPLATES


def over_daily_cap(sent_in_last_day: int, cap: int) -> bool:
    """True when one more public-action email to the address would exceed ``cap`` for the last 24 hours."""
    return sent_in_last_day >= cap
