"""The teacher pay report's reads, shared by the payroll route (``api/services/teacher_pay.py``) and the pay
period's workflow (``activities/teacher_pay.py``), so both count the same lessons: those starting in the period's
local days ``[start, end)``, with every active teacher's rate (a teacher with nothing to pay shows as zero)."""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.settings import Settings
from domain.teacher_pay import PayLesson, PayRate, PayReport, pay_report
from models import Lesson, Teacher

# Only these can be paid (domain/teacher_pay.py); the rest are left in the database.
PAYABLE_STATUSES = ("completed", "no_show")


def local_bounds(start: date, end: date, settings: Settings) -> tuple[datetime, datetime]:
    tz = settings.timezone
    return datetime.combine(start, time(0), tzinfo=tz), datetime.combine(end, time(0), tzinfo=tz)


async def pay_facts(
    session: AsyncSession, settings: Settings, start: date, end: date
) -> tuple[list[PayLesson], list[PayRate]]:
    since, before = local_bounds(start, end, settings)
    rows = await session.execute(
        select(
            col(Lesson.id),
            col(Lesson.teacher_id),
            col(Lesson.kind),
            col(Lesson.status),
            col(Lesson.attendance),
            col(Lesson.starts_at),
            col(Lesson.ends_at),
        )
        .where(col(Lesson.starts_at) >= since, col(Lesson.starts_at) < before)
        .where(col(Lesson.status).in_(PAYABLE_STATUSES))
        .order_by(col(Lesson.starts_at), col(Lesson.id))
    )
    lessons = [
        PayLesson(
            lesson_id=row.id,
            teacher_id=row.teacher_id,
            kind=row.kind,
            status=row.status,
            attendance=row.attendance,
            minutes=int((row.ends_at - row.starts_at).total_seconds() // 60),
        )
        for row in rows
    ]
    taught = {lesson.teacher_id for lesson in lessons}
    teachers = await session.execute(
        select(col(Teacher.id), col(Teacher.display_name), col(Teacher.hourly_rate_minor)).where(
            or_(col(Teacher.is_active).is_(True), col(Teacher.id).in_(taught))
        )
    )
    rates = [PayRate(row.id, row.display_name, row.hourly_rate_minor) for row in teachers]
    return lessons, rates


async def report_for(session: AsyncSession, settings: Settings, start: date, end: date) -> PayReport:
    lessons, rates = await pay_facts(session, settings, start, end)
    return pay_report(start, end, lessons, rates, settings.teacher_pay_forfeited_lessons)
