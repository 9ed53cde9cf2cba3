"""Enrollment rules beyond ``domain.enrollment_rules``: what an active enrollment accepts, the parent's windows
as stored, the semester lessons go into, when to remind a family of the demo, and the fingerprint of an
application for idempotent retries."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

from domain.calendar import Closure, Term, WeeklyWindow, require_aware
from domain.enrollment_rules import EnrollmentAction, EnrollmentState, can_accept

__all__ = [
    "accepts",
    "application_fingerprint",
    "demo_reminder_at",
    "lesson_term",
    "windows_from_json",
    "windows_to_json",
]


def accepts(state: EnrollmentState | str, action: EnrollmentAction | str) -> str | None:
    """Like :func:`domain.enrollment_rules.can_accept`, except that an active enrollment can still be cancelled:
    the family stops lessons (capacity freed, future lessons cancelled, billing told)."""
    if state == EnrollmentState.ACTIVE and action == EnrollmentAction.CANCEL:
        return None
    return can_accept(state, action)


def windows_to_json(windows: Iterable[WeeklyWindow]) -> list[dict[str, Any]]:
    return [
        {"weekday": w.weekday, "start": w.start.isoformat("minutes"), "end": w.end.isoformat("minutes")}
        for w in windows
    ]


def windows_from_json(rows: Iterable[dict[str, Any]]) -> list[WeeklyWindow]:
    return [WeeklyWindow(int(r["weekday"]), time.fromisoformat(r["start"]), time.fromisoformat(r["end"])) for r in rows]


def lesson_term(semesters: Sequence[tuple[date, date]], closures: Sequence[Closure], today: date) -> list[Term]:
    """The terms weekly lessons may go into, nearest first: the semester running ``today`` (if any), then the
    ones after it. Callers take the first that still has a lesson left."""
    upcoming = sorted((start, end) for start, end in semesters if end >= today)
    return [Term(start, end, [c for c in closures if c.end >= start and c.start <= end]) for start, end in upcoming]


def application_fingerprint(application: dict[str, Any]) -> str:
    """A stable hash of a submitted application: the same body gives the same hash whatever its key order."""
    canonical = json.dumps(application, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def demo_reminder_at(booked_at: datetime, demo_starts_at: datetime, before: timedelta) -> datetime | None:
    """When to remind the parent of the demo (``before`` it starts), or None when that moment had already
    passed at booking: the welcome email, sent then, is the reminder."""
    require_aware(booked_at, "booked_at")
    require_aware(demo_starts_at, "demo_starts_at")
    remind_at = demo_starts_at - before
    return remind_at if remind_at > booked_at else None
