"""Lessons: demo, regular and make-up lessons on a teacher's calendar."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from domain.attendance import Attendance
from models.base import created_at_field, id_field, one_of, tz_field


class LessonKind(StrEnum):
    demo = "demo"
    regular = "regular"
    makeup = "makeup"


class LessonStatus(StrEnum):
    scheduled = "scheduled"
    completed = "completed"
    cancelled = "cancelled"
    no_show = "no_show"
    # Held while the family is in dunning; restored when they pay.
    suspended = "suspended"


# Statuses whose time slot a teacher cannot give to anyone else (the exclusion constraint's WHERE).
BLOCKING_STATUSES = ("scheduled", "completed", "suspended")


class Lesson(SQLModel, table=True):
    __tablename__ = "lessons"
    __table_args__ = (
        one_of("kind", LessonKind, "ck_lessons_kind"),
        one_of("status", LessonStatus, "ck_lessons_status"),
        CheckConstraint("ends_at > starts_at", name="ck_lessons_order"),
        # How the student attended, once marked (domain/attendance.py); NULL for a lesson nobody marked.
        CheckConstraint(
            f"attendance IS NULL OR attendance IN ({', '.join(repr(a.value) for a in Attendance)})",
            name="ck_lessons_attendance",
        ),
        # Booking the same lesson twice (a retried activity) finds the first row instead of a second one.
        UniqueConstraint("student_id", "kind", "starts_at", name="uq_lessons_student_kind_start"),
        # The no-overlap rule per teacher is an exclusion constraint created in the migration (btree_gist).
    )

    id: uuid.UUID = id_field()
    kind: str = Field(max_length=16)
    status: str = Field(default=LessonStatus.scheduled, max_length=16, index=True)
    teacher_id: uuid.UUID = Field(foreign_key="teachers.id", index=True)
    student_id: uuid.UUID = Field(foreign_key="students.id", index=True)
    enrollment_id: uuid.UUID | None = Field(default=None, foreign_key="enrollments.id", index=True)
    starts_at: datetime = tz_field(index=True)
    ends_at: datetime = tz_field()
    notes: str = Field(default="", max_length=2000)
    attendance: str | None = Field(default=None, max_length=16)
    reminder_sent_at: datetime | None = tz_field(nullable=True)
    # While a substitute teaches it: the teacher whose lesson it is (and who gets it back when the substitution
    # is undone), and the substitution that gave it away.
    regular_teacher_id: uuid.UUID | None = Field(default=None, foreign_key="teachers.id")
    substitution_id: uuid.UUID | None = Field(default=None, foreign_key="substitutions.id", index=True)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class Substitution(SQLModel, table=True):
    """A substitute teaching a regular teacher's lessons: one lesson, or those in a range of local days."""

    __tablename__ = "substitutions"
    __table_args__ = (
        CheckConstraint("regular_teacher_id <> substitute_teacher_id", name="ck_substitutions_teachers"),
        CheckConstraint("to_date >= from_date", name="ck_substitutions_order"),
    )

    id: uuid.UUID = id_field()
    regular_teacher_id: uuid.UUID = Field(foreign_key="teachers.id", index=True)
    substitute_teacher_id: uuid.UUID = Field(foreign_key="teachers.id", index=True)
    # Set for a one-lesson substitution (no foreign key: lessons point here already); a range has the days only.
    lesson_id: uuid.UUID | None = None
    from_date: date
    to_date: date
    created_at: datetime = created_at_field()
    undone_at: datetime | None = tz_field(nullable=True)
