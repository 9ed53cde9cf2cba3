"""Re-enrollment's SQL: the offers with their students and teachers, and a semester's booked weekly lessons."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.repositories.base import get_one
from core.reenrollment import local_day_bounds
from core.settings import Settings
from models import (
    BLOCKING_STATUSES,
    Enrollment,
    Lesson,
    LessonKind,
    ReenrollmentOffer,
    Semester,
    Student,
    Teacher,
)


@dataclass(frozen=True)
class OfferRow:
    offer: ReenrollmentOffer
    student: Student
    teacher: Teacher
    instrument: str


async def semester(session: AsyncSession, semester_id: uuid.UUID) -> Semester:
    found: Semester = await get_one(session, select(Semester).where(col(Semester.id) == semester_id), "semester")
    return found


async def semesters(session: AsyncSession) -> Sequence[Semester]:
    return list(await session.scalars(select(Semester)))


async def offers(session: AsyncSession, semester_id: uuid.UUID, parent_id: uuid.UUID | None = None) -> list[OfferRow]:
    """The offers made at the end of ``semester_id`` (one family's when ``parent_id`` is given)."""
    query = (
        select(ReenrollmentOffer, Student, Teacher, col(Enrollment.instrument))
        .join(Student, col(Student.id) == col(ReenrollmentOffer.student_id))
        .join(Teacher, col(Teacher.id) == col(ReenrollmentOffer.teacher_id))
        .join(Enrollment, col(Enrollment.id) == col(ReenrollmentOffer.enrollment_id))
        .where(col(ReenrollmentOffer.semester_id) == semester_id)
        .order_by(col(Student.last_name), col(Student.first_name), col(ReenrollmentOffer.enrollment_id))
    )
    if parent_id is not None:
        query = query.where(col(ReenrollmentOffer.parent_id) == parent_id)
    rows = await session.execute(query)
    return [OfferRow(offer, student, teacher, instrument) for offer, student, teacher, instrument in rows]


@dataclass(frozen=True)
class BookedLesson:
    teacher: Teacher
    student: Student
    starts_at: datetime
    ends_at: datetime


async def open_offers_of(session: AsyncSession, parent_id: uuid.UUID, now: datetime) -> list[ReenrollmentOffer]:
    """The family's offers still waiting for their deadline, oldest semester first."""
    query = (
        select(ReenrollmentOffer)
        .where(
            col(ReenrollmentOffer.parent_id) == parent_id,
            col(ReenrollmentOffer.outcome) == "open",
            col(ReenrollmentOffer.deadline) > now,
        )
        .order_by(col(ReenrollmentOffer.deadline))
    )
    return list(await session.scalars(query))


async def weekly_lessons(
    session: AsyncSession, settings: Settings, term: Semester, teacher_id: uuid.UUID | None
) -> list[BookedLesson]:
    """The regular lessons booked or held in ``term`` (one teacher's when ``teacher_id`` is given)."""
    since, before = local_day_bounds(term.start_date, term.end_date, settings)
    query = (
        select(Lesson, Teacher, Student)
        .join(Teacher, col(Teacher.id) == col(Lesson.teacher_id))
        .join(Student, col(Student.id) == col(Lesson.student_id))
        .where(
            col(Lesson.kind) == LessonKind.regular,
            col(Lesson.status).in_(BLOCKING_STATUSES),
            col(Lesson.starts_at) >= since,
            col(Lesson.starts_at) < before,
        )
        .order_by(col(Lesson.starts_at))
    )
    if teacher_id is not None:
        query = query.where(col(Lesson.teacher_id) == teacher_id)
    return [BookedLesson(t, s, lesson.starts_at, lesson.ends_at) for lesson, t, s in await session.execute(query)]
