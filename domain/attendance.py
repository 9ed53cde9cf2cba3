"""Attendance: what a teacher records about a lesson that has started, and what each record means.

A lesson's ``status`` says what happened to the booking (scheduled, completed, no_show, cancelled, suspended); its
``attendance`` says how the student attended: present, late, absent or excused. Marking attendance sets both, so
every reader of the status (revenue recognition, the pages) keeps working: present and late complete the lesson,
absent and excused make it a no-show. ``POST /lessons/{id}/complete`` and ``/no-show`` are present and absent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Attendance(StrEnum):
    present = "present"
    late = "late"
    absent = "absent"
    excused = "excused"


class Outcome(StrEnum):
    """What a lesson amounts to for reports and pay."""

    taught = "taught"  # completed: the student came (present, late, or marked completed before attendance existed)
    forfeited = "forfeited"  # the student did not come and had no excuse (absent, or a plain no-show)
    excused = "excused"  # the student did not come, excused: not taught (a make-up is the credits' business)
    unmarked = "unmarked"  # started, still scheduled: nobody recorded it yet
    not_held = "not_held"  # cancelled or on hold (billing): never counts


# The statuses attendance may be marked (or corrected) from; cancelled and suspended lessons were not held.
MARKABLE_STATUSES = frozenset({"scheduled", "completed", "no_show"})
STATUS_OF = {
    Attendance.present: "completed",
    Attendance.late: "completed",
    Attendance.absent: "no_show",
    Attendance.excused: "no_show",
}


class Refusal(StrEnum):
    not_started = "not_started"
    invalid_status = "invalid_status"
    demo_lesson = "demo_lesson"


def refusal(kind: str, status: str, starts_at: datetime, now: datetime) -> Refusal | None:
    """Why attendance may not be marked on this lesson now, or None: only once it has started, never on a demo
    (its outcome goes through its enrollment), and only on a lesson that was held or is still scheduled."""
    if kind == "demo":
        return Refusal.demo_lesson
    if status not in MARKABLE_STATUSES:
        return Refusal.invalid_status
    if starts_at > now:
        return Refusal.not_started
    return None


def hours(minutes: int) -> str:
    """``90`` → ``"1.50"``: hours with two decimals (truncated), as reports and payroll show them."""
    return f"{minutes // 60}.{(minutes % 60) * 100 // 60:02d}"


def status_for(attendance: Attendance) -> str:
    return STATUS_OF[attendance]


def outcome(status: str, attendance: str | None) -> Outcome:
    if status == "completed":
        return Outcome.taught
    if status == "no_show":
        return Outcome.excused if attendance == Attendance.excused else Outcome.forfeited
    if status == "scheduled":
        return Outcome.unmarked
    return Outcome.not_held


@dataclass
class AttendanceTotals:
    """One student's or teacher's lessons over a period, counted by attendance."""

    lessons: int = 0
    present: int = 0
    late: int = 0
    absent: int = 0
    excused: int = 0
    unmarked: int = 0
    not_held: int = 0
    taught: int = 0
    taught_minutes: int = 0

    @property
    def attendance_rate_percent(self) -> int | None:
        """Lessons attended (present or late) out of those the student was expected at, rounded; None if none."""
        expected = self.present + self.late + self.absent + self.excused
        return None if expected == 0 else (200 * (self.present + self.late) + expected) // (2 * expected)


@dataclass(frozen=True)
class AttendedLesson:
    key: object  # whose row the lesson counts in (a student's or a teacher's id)
    status: str
    attendance: str | None
    minutes: int


def tally(lessons: Iterable[AttendedLesson]) -> dict[object, AttendanceTotals]:
    """Totals per key. A completed lesson without a recorded attendance counts as present, a no-show as absent."""
    totals: dict[object, AttendanceTotals] = {}
    for lesson in lessons:
        row = totals.setdefault(lesson.key, AttendanceTotals())
        row.lessons += 1
        result = outcome(lesson.status, lesson.attendance)
        if result == Outcome.taught:
            row.taught += 1
            row.taught_minutes += lesson.minutes
            if lesson.attendance == Attendance.late:
                row.late += 1
            else:
                row.present += 1
        elif result == Outcome.excused:
            row.excused += 1
        elif result == Outcome.forfeited:
            row.absent += 1
        elif result == Outcome.unmarked:
            row.unmarked += 1
        else:
            row.not_held += 1
    return totals
