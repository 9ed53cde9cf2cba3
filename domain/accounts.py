"""Rules about login accounts that outlive or follow the people behind them."""

from __future__ import annotations

LAST_ADMIN = "the school's last active admin cannot be removed or deactivated; make another admin first"


def deactivation_refused(role: str, other_active_admins: int) -> str | None:
    """Why an account may not be deactivated, or None when it may.

    Without an active admin nobody could add staff, run billing or reactivate anyone: the school would be locked out.
    """
    if role == "admin" and other_active_admins < 1:
        return LAST_ADMIN
    return None
