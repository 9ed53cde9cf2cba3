"""Teacher changes' SQL: the lessons a substitution or a transfer concerns, reserving and releasing a teacher's
place (the same conditional update as enrollment), and marking lessons substituted."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import any_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import Enrollment, Lesson, LessonKind, LessonStatus, Student, Substitution, Teacher


async def scheduled_lessons(
    session: AsyncSession, teacher_id: uuid.UUID, starts_from: datetime, starts_before: datetime
) -> Sequence[Lesson]:
    """The teacher's scheduled lessons (not demos: those go through their enrollment) starting in the range; read
    without a row lock, which the caller takes after the schedule locks (the order every lesson writer keeps)."""
    query = (
        select(Lesson)
        .where(
            col(Lesson.teacher_id) == teacher_id,
            col(Lesson.status) == LessonStatus.scheduled,
            col(Lesson.kind) != LessonKind.demo,
            col(Lesson.starts_at) >= starts_from,
            col(Lesson.starts_at) < starts_before,
        )
        .order_by(col(Lesson.starts_at))
    )
    return (await session.scalars(query)).all()


async def substituted_lessons(session: AsyncSession, substitution_id: uuid.UUID) -> Sequence[Lesson]:
    query = (
        select(Lesson)
        .where(col(Lesson.substitution_id) == substitution_id, col(Lesson.status) == LessonStatus.scheduled)
        .order_by(col(Lesson.starts_at))
    )
    return (await session.scalars(query)).all()


async def enrollment_lessons(
    session: AsyncSession, enrollment_id: uuid.UUID, starts_from: datetime
) -> Sequence[Lesson]:
    query = (
        select(Lesson)
        .where(
            col(Lesson.enrollment_id) == enrollment_id,
            col(Lesson.status) == LessonStatus.scheduled,
            col(Lesson.kind) != LessonKind.demo,
            col(Lesson.starts_at) >= starts_from,
        )
        .order_by(col(Lesson.starts_at))
        .with_for_update()
    )
    return (await session.scalars(query)).all()


async def instrument_of(session: AsyncSession, lesson: Lesson) -> str:
    if lesson.enrollment_id is not None:
        enrollment = await session.get(Enrollment, lesson.enrollment_id)
        if enrollment is not None:
            return enrollment.instrument
    student = await session.get(Student, lesson.student_id)
    return (student.instrument if student else None) or "piano"


async def parents_of(session: AsyncSession, student_ids: set[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    if not student_ids:
        return {}
    rows = await session.execute(
        select(col(Student.id), col(Student.parent_id)).where(col(Student.id).in_(student_ids))
    )
    return dict(rows.tuples().all())


async def mark_substituted(
    session: AsyncSession, lesson_id: uuid.UUID, regular_teacher_id: uuid.UUID | None, substitution_id: uuid.UUID | None
) -> None:
    await session.execute(
        update(Lesson)
        .where(col(Lesson.id) == lesson_id)
        .values(regular_teacher_id=regular_teacher_id, substitution_id=substitution_id)
        .execution_options(synchronize_session=False)
    )


async def substitution(
    session: AsyncSession, substitution_id: uuid.UUID, regular_teacher_id: uuid.UUID
) -> Substitution | None:
    found: Substitution | None = await session.scalar(
        select(Substitution)
        .where(col(Substitution.id) == substitution_id, col(Substitution.regular_teacher_id) == regular_teacher_id)
        .with_for_update()
    )
    return found


async def reserve_place(session: AsyncSession, teacher_id: uuid.UUID, instrument: str) -> bool:
    """One student more for an active teacher of the instrument with a free place (a conditional update)."""
    reserved = await session.scalar(
        update(Teacher)
        .where(
            col(Teacher.id) == teacher_id,
            col(Teacher.is_active),
            col(Teacher.active_students) < col(Teacher.capacity),
            any_(col(Teacher.instruments)) == instrument,
        )
        .values(active_students=col(Teacher.active_students) + 1)
        .returning(col(Teacher.id))
    )
    return reserved is not None


async def release_place(session: AsyncSession, teacher_id: uuid.UUID) -> None:
    """One student fewer (never below zero: the teachers' load CHECK agrees)."""
    await session.execute(
        update(Teacher)
        .where(col(Teacher.id) == teacher_id, col(Teacher.active_students) > 0)
        .values(active_students=col(Teacher.active_students) - 1)
    )


async def locked_enrollment(session: AsyncSession, enrollment_id: uuid.UUID) -> Enrollment | None:
    found: Enrollment | None = await session.get(Enrollment, enrollment_id, with_for_update={"key_share": True})
    return found


async def open_substitutions(session: AsyncSession, today: date, limit: int) -> Sequence[Substitution]:
    """Substitutions not undone that have not ended, soonest first (the office's page)."""
    query = (
        select(Substitution)
        .where(col(Substitution.undone_at).is_(None), col(Substitution.to_date) >= today)
        .order_by(col(Substitution.from_date), col(Substitution.id))
        .limit(limit)
    )
    return (await session.scalars(query)).all()


async def active_teachers(session: AsyncSession) -> Sequence[Teacher]:
    query = select(Teacher).where(col(Teacher.is_active)).order_by(col(Teacher.display_name))
    return (await session.scalars(query)).all()
