"""Billing for a family moved in by ``cedar import``: which of its enrollments wait for a card, and from when they
are billed once the card is given.

An imported enrollment began before Cedar: its lessons were booked by the import, and no card was on file. When
the family gives its card, billing starts at the **next lesson period** (Cedar's calendar month or Monday-to-Sunday
week, ``domain.tuition``) that holds one of its lessons: the lessons of the period in progress, and every lesson
before it, are never billed. Handing the enrollment to billing with that instant as its first regular lesson makes
the subscription's free trial end there, so Stripe's first invoice is that period's.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from domain.calendar import require_aware
from domain.tuition import period_instants

IMPORT_SOURCE = "import"  # the ``application.source`` of an enrollment ``cedar import`` made


def awaits_card(state: str, application: Mapping[str, Any], payment_method_id: str) -> bool:
    """An active enrollment made by the import that has never been handed to billing (no card recorded on it)."""
    return state == "active" and application.get("source") == IMPORT_SOURCE and not payment_method_id


def billing_starts_at(lesson_starts: Iterable[datetime], now: datetime, interval: str, tz: ZoneInfo) -> datetime | None:
    """The start (local midnight, in UTC) of the first lesson period after the one holding ``now`` that holds a
    lesson; None when every lesson left falls in the period in progress (nothing is billed)."""
    require_aware(now, "now")
    _, current_end = period_instants(now, interval, tz)
    ahead = [start for start in lesson_starts if start >= current_end]
    if not ahead:
        return None
    return period_instants(min(ahead), interval, tz)[0]
