"""Money as families read it: integer minor units (cents) shown as "$1,234.50 CAD"."""

from __future__ import annotations

__all__ = ["format_money"]


def format_money(amount_minor: int, currency: str = "cad") -> str:
    """``amount_minor`` cents as ``$1,234.50 CAD``: thousands separated, two decimals, currency code in capitals.

    Integers only (no float rounding); a negative amount (a credit) reads ``-$12.50 CAD``.
    """
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int):
        raise ValueError(f"amounts are integer minor units, got {amount_minor!r}")
    sign = "-" if amount_minor < 0 else ""
    units, cents = divmod(abs(amount_minor), 100)
    return f"{sign}${units:,}.{cents:02d} {currency.upper()}"
