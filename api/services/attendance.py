"""Attendance: a teacher (their own lessons) or an admin marks a lesson that has started present, late, absent
or excused (the rules: ``domain/attendance.py``), and staff read totals per student or per teacher over a period.
Another teacher's lesson, student or teacher is not found (the principal's scope).

An excused absence earns the lesson's make-up credit, once, through the make-up service as a cancellation does;
marking it otherwise afterwards voids the credit while unused (the rule: ``domain.makeups.attendance_credit``)."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio.client import Client

from api.errors import CedarError
from api.principal import Principal
from api.repositories import attendance as repository
from api.repositories import lessons, students, teachers
from api.repositories import makeups as credits
from api.repositories.audit import audit_staff_reads, audit_write, snapshot
from api.repositories.base import invalid
from api.schemas.attendance import AttendanceReport, AttendanceRow
from api.services import makeups
from core.settings import Settings
from domain.attendance import Attendance, AttendedLesson, Refusal, hours, refusal, status_for, tally
from domain.makeups import CreditAction, CreditStatus, attendance_credit
from models import Lesson, Teacher

REFUSALS = {
    Refusal.not_started: "a lesson's attendance can be marked only once it has started",
    Refusal.demo_lesson: "a demo lesson's outcome is reported through its enrollment",
}
CREDIT_REFUSALS = {
    CreditAction.refuse_used: (
        "credit_used",
        "the lesson stays excused: its make-up credit was already used for a make-up lesson",
    ),
    CreditAction.refuse_voided: (
        "credit_voided",
        "the lesson's make-up credit was voided and a lesson earns one only once; the office may grant a new one",
    ),
}


async def mark(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    lesson_id: uuid.UUID,
    attendance: Attendance,
) -> Lesson:
    """Sets the lesson's attendance and the status it implies; marking again corrects it (audited each time).
    Excused earns the lesson's one make-up credit; marking an excused lesson otherwise voids its unused credit
    (409 ``credit_used`` if it paid for a make-up already). Commits, then starts the credit's workflow and the
    notices to the family and the teacher, as a cancellation does."""
    lesson = await lessons.lesson(session, principal, lesson_id)
    # One mark of a lesson at a time: the credit decision below reads what the previous one committed.
    await session.refresh(lesson, with_for_update=True)
    refused = refusal(lesson.kind, lesson.status, lesson.starts_at, datetime.now(UTC))
    if refused == Refusal.invalid_status:
        raise CedarError(409, refused.value, f"the lesson is {lesson.status}; attendance needs a lesson that was held")
    if refused is not None:
        raise CedarError(409, refused.value, REFUSALS[refused])
    credit = await credits.of_lesson(session, lesson.id)
    action = attendance_credit(attendance == Attendance.excused, credit.status if credit else None)
    if action in CREDIT_REFUSALS:
        raise CedarError(409, *CREDIT_REFUSALS[action])
    decided = None
    if action == CreditAction.earn:
        decided = await makeups.decide_excused(session, settings, principal, lesson)
    elif action == CreditAction.void and credit is not None:
        # The credit's workflow decides the race with a booking: a 409 here leaves the lesson as it was.
        reason = f"the excused lesson of {lesson.starts_at.date().isoformat()} was marked {attendance.value}"
        await makeups.void_credit(session, temporal, settings, principal, credit, reason)
    elif attendance == Attendance.excused and credit is not None and credit.status == CreditStatus.available:
        decided = await makeups.excused_again(session, settings, lesson, credit)
    before = snapshot(lesson)
    lesson.attendance, lesson.status = attendance.value, status_for(attendance)
    lesson.updated_at = datetime.now(UTC)
    await session.flush()
    await audit_write(session, principal, "attendance", "lesson", lesson.id, before=before, after=snapshot(lesson))
    # The credit's workflow and the notices start only once the rows they read are committed.
    await session.commit()
    if decided is not None:
        await makeups.announce_cancellation(temporal, settings, lesson, decided)
    return lesson


def check_period(settings: Settings, start: date, end: date, names: tuple[str, str]) -> None:
    if end <= start:
        raise invalid(names[1], f"must be after {names[0]}")
    if (end - start).days > settings.report_max_days:
        raise invalid(names[1], f"a report covers at most {settings.report_max_days} days")


async def report(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    by: Literal["student", "teacher"],
    start: date,
    end: date,
    student_id: uuid.UUID | None = None,
    teacher_id: uuid.UUID | None = None,
) -> AttendanceReport:
    check_period(settings, start, end, ("period_start", "period_end"))
    if student_id is not None:
        await students.student(session, principal, student_id)  # 404 for a student the caller does not teach
    if teacher_id is not None:
        await teachers.teacher(session, principal, teacher_id)  # 404 for another teacher
    tz = settings.timezone
    since, before = datetime.combine(start, time(0), tzinfo=tz), datetime.combine(end, time(0), tzinfo=tz)
    rows = await repository.lessons_in(session, principal, since, before, student_id, teacher_id)
    totals = tally(
        AttendedLesson(
            key=row.student_id if by == "student" else row.teacher_id,
            status=row.status,
            attendance=row.attendance,
            minutes=(row.ends_at - row.starts_at) // timedelta(minutes=1),
        )
        for row in rows
    )
    ids = {key for key in totals if isinstance(key, uuid.UUID)}
    if by == "student":
        names = await students.first_names(session, principal, ids)
        await audit_staff_reads(session, principal, "student", names)
    else:
        found = await session.execute(
            select(col(Teacher.id), col(Teacher.display_name)).where(col(Teacher.id).in_(ids))
        )
        names = {row.id: row.display_name for row in found}
    out = [
        AttendanceRow(
            id=key,
            name=names.get(key, ""),
            lessons=row.lessons,
            present=row.present,
            late=row.late,
            absent=row.absent,
            excused=row.excused,
            unmarked=row.unmarked,
            not_held=row.not_held,
            taught=row.taught,
            taught_hours=hours(row.taught_minutes),
            attendance_rate_percent=row.attendance_rate_percent,
        )
        for key, row in totals.items()
        if isinstance(key, uuid.UUID)
    ]
    out.sort(key=lambda row: (row.name.lower(), str(row.id)))
    return AttendanceReport(period_start=start, period_end=end, rows=out)


CSV_HEADER = (
    "id",
    "name",
    "lessons",
    "present",
    "late",
    "absent",
    "excused",
    "unmarked",
    "not_held",
    "taught",
    "taught_hours",
    "attendance_rate_percent",
)


def csv_rows(report: AttendanceReport) -> list[tuple[object, ...]]:
    return [tuple(getattr(row, name) for name in CSV_HEADER) for row in report.rows]
