"""Instants as people read them: in the school's timezone, with the zone's abbreviation."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from domain.calendar import require_aware


def format_local(at: datetime, tz: ZoneInfo) -> str:
    """``Monday 30 November 2026, 4:00 PM PST``: the wall-clock time in ``tz`` on that day (DST included)."""
    require_aware(at, "at")
    local = at.astimezone(tz)
    hour = local.hour % 12 or 12
    return f"{local:%A} {local.day} {local:%B %Y}, {hour}:{local:%M %p} {local.tzname()}"
