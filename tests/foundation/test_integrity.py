"""The database itself refuses double-booked teachers, unbalanced or edited ledger entries, and bad rows."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, IntegrityError

from core.db import SessionFactory, transaction
from models import JournalEntry, Lesson, LessonStatus, Parent, Posting, Student, Teacher

START = datetime(2027, 2, 1, 17, 0, tzinfo=UTC)


async def _teacher_and_students(sessions: SessionFactory) -> tuple[Teacher, Student, Student]:
    async with transaction(sessions) as session:
        teacher = Teacher(
            first_name="Ada",
            last_name="Keys",
            display_name="Ada K.",
            email="ada@school.example",
            instruments=["piano"],
            capacity=2,
        )
        parent = Parent(first_name="Pat", last_name="Lee", email="pat@family.example", phone="+16045550100")
        session.add_all([teacher, parent])
        await session.flush()
        first = Student(parent_id=parent.id, first_name="Sam", last_name="Lee", date_of_birth=date(2015, 5, 1))
        second = Student(parent_id=parent.id, first_name="Kim", last_name="Lee", date_of_birth=date(2017, 3, 9))
        session.add_all([first, second])
    return teacher, first, second


def _lesson(
    teacher: Teacher, student: Student, start: datetime, minutes: int = 30, status: str = LessonStatus.scheduled
) -> Lesson:
    return Lesson(
        kind="regular",
        teacher_id=teacher.id,
        student_id=student.id,
        starts_at=start,
        ends_at=start + timedelta(minutes=minutes),
        status=status,
    )


async def test_exclusion_constraint_rejects_an_overlapping_lesson(sessions: SessionFactory) -> None:
    teacher, first, second = await _teacher_and_students(sessions)
    async with transaction(sessions) as session:
        session.add(_lesson(teacher, first, START))

    with pytest.raises(IntegrityError, match="ex_lessons_teacher_no_overlap"):
        async with transaction(sessions) as session:
            session.add(_lesson(teacher, second, START + timedelta(minutes=15)))

    # Back-to-back lessons touch but do not overlap; a cancelled lesson frees its slot.
    async with transaction(sessions) as session:
        session.add(_lesson(teacher, second, START + timedelta(minutes=30)))
        session.add(_lesson(teacher, second, START - timedelta(minutes=60), status="cancelled"))
        session.add(_lesson(teacher, first, START - timedelta(minutes=45)))


async def test_a_lesson_must_end_after_it_starts(sessions: SessionFactory) -> None:
    teacher, first, _ = await _teacher_and_students(sessions)
    with pytest.raises(IntegrityError, match="ck_lessons_order"):
        async with transaction(sessions) as session:
            session.add(_lesson(teacher, first, START, minutes=0))


async def test_teacher_load_cannot_exceed_capacity(sessions: SessionFactory) -> None:
    teacher, _, _ = await _teacher_and_students(sessions)
    with pytest.raises(IntegrityError, match="ck_teachers_load"):
        async with transaction(sessions) as session:
            await session.execute(text("UPDATE teachers SET active_students = 3 WHERE id = :id"), {"id": teacher.id})


async def test_emails_are_unique(sessions: SessionFactory) -> None:
    await _teacher_and_students(sessions)
    with pytest.raises(IntegrityError, match="parents_email"):
        async with transaction(sessions) as session:
            session.add(Parent(first_name="P", last_name="L", email="pat@family.example", phone="+16045550101"))


async def test_an_unbalanced_journal_entry_is_refused_at_commit(sessions: SessionFactory) -> None:
    async with sessions() as session:
        entry = JournalEntry(idempotency_key="invoice_finalized:in_1", kind="invoice_finalized")
        session.add(entry)
        await session.flush()
        session.add(Posting(entry_id=entry.id, account_code="accounts_receivable", amount_minor=12000))
        session.add(Posting(entry_id=entry.id, account_code="deferred_revenue", amount_minor=-11000))
        with pytest.raises(DBAPIError, match="unbalanced"):
            await session.commit()


async def test_the_ledger_is_append_only(sessions: SessionFactory) -> None:
    async with transaction(sessions) as session:
        entry = JournalEntry(idempotency_key="invoice_finalized:in_2", kind="invoice_finalized")
        session.add(entry)
        await session.flush()
        session.add(Posting(entry_id=entry.id, account_code="accounts_receivable", amount_minor=12000))
        session.add(Posting(entry_id=entry.id, account_code="deferred_revenue", amount_minor=-12000))
    for statement in ("UPDATE postings SET amount_minor = 1", "DELETE FROM journal_entries"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with transaction(sessions) as session:
                await session.execute(text(statement))
    with pytest.raises(IntegrityError, match="journal_entries_idempotency_key"):
        async with transaction(sessions) as session:
            session.add(JournalEntry(idempotency_key="invoice_finalized:in_2", kind="invoice_finalized"))
