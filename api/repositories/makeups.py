"""Make-up credits' SQL: the school's policy, the credits a caller may see, the conditional claim of a credit,
and what open slots are computed from (availability, busy time, closures)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import Select, select, union_all, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.principal import Principal
from api.repositories.base import get_one
from core.settings import Settings
from domain.calendar import Closure as ClosureDays
from domain.calendar import WeeklyWindow
from domain.makeups import CreditStatus, MakeupPolicy
from models import (
    BLOCKING_STATUSES,
    Closure,
    Lesson,
    MakeupCredit,
    Role,
    SystemSetting,
    Teacher,
    TeacherAvailability,
    TeacherTimeOff,
)

POLICY_KEY = "makeup_policy"
log = logging.getLogger(__name__)


class PolicyOverrides(BaseModel):
    """The office's ``makeup_policy`` system setting: any of these, durations as ISO 8601 or seconds."""

    model_config = ConfigDict(extra="forbid")

    cancel_notice: timedelta | None = None
    credit_lifetime: timedelta | None = None
    reminder_before: timedelta | None = None
    booking_min_notice: timedelta | None = None
    booking_horizon: timedelta | None = None
    any_teacher: bool | None = None


def default_policy(settings: Settings) -> MakeupPolicy:
    return MakeupPolicy(
        cancel_notice=settings.parent_cancel_notice,
        credit_lifetime=settings.makeup_credit_lifetime,
        reminder_before=settings.makeup_reminder_before,
        booking_min_notice=settings.makeup_min_notice,
        booking_horizon=settings.makeup_booking_horizon,
        any_teacher=settings.makeup_any_teacher,
    )


async def policy(session: AsyncSession, settings: Settings) -> MakeupPolicy:
    """The settings' policy with the office's overrides; overrides that do not make a policy are ignored (logged)."""
    defaults = default_policy(settings)
    row = await session.get(SystemSetting, POLICY_KEY)
    if row is None:
        return defaults
    try:
        overrides = PolicyOverrides.model_validate(row.value).model_dump(exclude_none=True)
        return MakeupPolicy(**{**defaults.__dict__, **overrides})
    except (ValidationError, ValueError, TypeError) as error:
        log.warning("ignoring the %s system setting: %s", POLICY_KEY, error)
        return defaults


def scoped(principal: Principal) -> Select[Any]:
    query = select(MakeupCredit)
    if principal.role == Role.admin:
        return query
    if principal.role == Role.parent and principal.parent_id is not None:
        return query.where(col(MakeupCredit.parent_id) == principal.parent_id)
    return query.where(col(MakeupCredit.id).is_(None))


async def credits(
    session: AsyncSession, principal: Principal, student_id: uuid.UUID | None, status: CreditStatus | None
) -> Sequence[MakeupCredit]:
    query = scoped(principal)
    if student_id is not None:
        query = query.where(col(MakeupCredit.student_id) == student_id)
    if status is not None:
        query = query.where(col(MakeupCredit.status) == status)
    return (await session.scalars(query.order_by(col(MakeupCredit.expires_at), col(MakeupCredit.id)).limit(500))).all()


async def credit(session: AsyncSession, principal: Principal, credit_id: uuid.UUID) -> MakeupCredit:
    found: MakeupCredit = await get_one(
        session, scoped(principal).where(col(MakeupCredit.id) == credit_id), "makeup credit"
    )
    return found


async def of_lesson(session: AsyncSession, lesson_id: uuid.UUID) -> MakeupCredit | None:
    """The credit the lesson earned (cancelled or excused), whoever may see it: at most one (unique)."""
    found: MakeupCredit | None = await session.scalar(
        select(MakeupCredit).where(col(MakeupCredit.origin_lesson_id) == lesson_id)
    )
    return found


async def claim(session: AsyncSession, credit_id: uuid.UUID, lesson_id: uuid.UUID, now: datetime) -> bool:
    """Marks the credit used for ``lesson_id`` if it is still available and unexpired: the one decision of a race
    (a concurrent claim waits on the row's lock, then finds it used)."""
    result = await session.execute(
        update(MakeupCredit)
        .where(
            col(MakeupCredit.id) == credit_id,
            col(MakeupCredit.status) == CreditStatus.available,
            col(MakeupCredit.expires_at) > now,
        )
        .values(status=CreditStatus.used, used_lesson_id=lesson_id, used_at=now, updated_at=now)
    )
    return bool(getattr(result, "rowcount", 0))


async def teachers_of(session: AsyncSession, instrument: str) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(col(Teacher.id)).where(col(Teacher.is_active), col(Teacher.instruments).contains([instrument]))
    )
    return list(rows)


async def availability(session: AsyncSession, teacher_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[WeeklyWindow]]:
    windows: dict[uuid.UUID, list[WeeklyWindow]] = {t: [] for t in teacher_ids}
    rows = await session.scalars(
        select(TeacherAvailability).where(col(TeacherAvailability.teacher_id).in_(teacher_ids))
    )
    for row in rows:
        windows[row.teacher_id].append(WeeklyWindow(row.weekday, row.start_time, row.end_time))
    return windows


async def busy(
    session: AsyncSession, teacher_ids: Sequence[uuid.UUID], student_id: uuid.UUID, start: datetime, end: datetime
) -> tuple[dict[uuid.UUID, list[tuple[datetime, datetime]]], list[tuple[datetime, datetime]]]:
    """Each teacher's taken time (lessons that hold a slot, time off) and the student's own lessons."""
    lessons = select(col(Lesson.teacher_id), col(Lesson.starts_at), col(Lesson.ends_at)).where(
        col(Lesson.teacher_id).in_(teacher_ids),
        col(Lesson.status).in_(BLOCKING_STATUSES),
        col(Lesson.ends_at) > start,
        col(Lesson.starts_at) < end,
    )
    time_off = select(col(TeacherTimeOff.teacher_id), col(TeacherTimeOff.starts_at), col(TeacherTimeOff.ends_at)).where(
        col(TeacherTimeOff.teacher_id).in_(teacher_ids),
        col(TeacherTimeOff.ends_at) > start,
        col(TeacherTimeOff.starts_at) < end,
    )
    taken: dict[uuid.UUID, list[tuple[datetime, datetime]]] = {t: [] for t in teacher_ids}
    for teacher_id, busy_start, busy_end in await session.execute(union_all(lessons, time_off)):
        taken[teacher_id].append((busy_start, busy_end))
    student_rows = await session.execute(
        select(col(Lesson.starts_at), col(Lesson.ends_at)).where(
            col(Lesson.student_id) == student_id,
            col(Lesson.status).in_(BLOCKING_STATUSES),
            col(Lesson.ends_at) > start,
            col(Lesson.starts_at) < end,
        )
    )
    return taken, [(s, e) for s, e in student_rows]


async def closures(session: AsyncSession) -> list[ClosureDays]:
    rows = (await session.execute(select(col(Closure.start_date), col(Closure.end_date)))).all()
    return [ClosureDays(start, end) for start, end in rows]


async def latest_teacher(session: AsyncSession, student_id: uuid.UUID) -> uuid.UUID | None:
    found: uuid.UUID | None = await session.scalar(
        select(col(Lesson.teacher_id))
        .where(col(Lesson.student_id) == student_id)
        .order_by(col(Lesson.starts_at).desc())
        .limit(1)
    )
    return found
