"""The school's catalogue and calendar: instruments, rates, teachers, availability, years, terms, closures."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import ARRAY, CheckConstraint, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from models.base import created_at_field, id_field, tz_field


class Instrument(SQLModel, table=True):
    __tablename__ = "instruments"

    code: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=64)
    is_active: bool = True


class LessonRate(SQLModel, table=True):
    """What a weekly lesson of one instrument and length costs, billed weekly or monthly."""

    __tablename__ = "lesson_rates"
    __table_args__ = (
        UniqueConstraint("instrument", "minutes", name="uq_lesson_rates_instrument_minutes"),
        CheckConstraint("minutes > 0", name="ck_lesson_rates_minutes"),
        CheckConstraint("weekly_price_minor > 0 AND monthly_price_minor > 0", name="ck_lesson_rates_prices"),
    )

    id: uuid.UUID = id_field()
    instrument: str = Field(foreign_key="instruments.code", max_length=32)
    minutes: int
    weekly_price_minor: int
    monthly_price_minor: int
    currency: str = Field(default="cad", max_length=3)


class Teacher(SQLModel, table=True):
    __tablename__ = "teachers"
    __table_args__ = (
        CheckConstraint("capacity >= 0", name="ck_teachers_capacity"),
        # Capacity is reserved with a conditional UPDATE; this CHECK is the database's last word on it.
        CheckConstraint("active_students >= 0 AND active_students <= capacity", name="ck_teachers_load"),
        CheckConstraint("email = lower(email)", name="ck_teachers_email_lowercase"),
        CheckConstraint("hourly_rate_minor >= 0", name="ck_teachers_hourly_rate"),
    )

    id: uuid.UUID = id_field()
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", unique=True)
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    display_name: str = Field(max_length=120)
    email: str = Field(max_length=254, unique=True)
    bio: str = Field(default="", max_length=2000)
    instruments: list[str] = Field(default_factory=list, sa_type=ARRAY(String(32)), nullable=False)
    capacity: int = 20
    active_students: int = 0
    is_active: bool = True
    # What the school pays the teacher per hour taught, in minor units (domain/teacher_pay.py); 0 until set.
    hourly_rate_minor: int = 0
    created_at: datetime = created_at_field()


class TeacherAvailability(SQLModel, table=True):
    """A weekly window, in the school's local time, when a teacher can teach."""

    __tablename__ = "teacher_availability"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_teacher_availability_weekday"),
        CheckConstraint("end_time > start_time", name="ck_teacher_availability_order"),
        UniqueConstraint("teacher_id", "weekday", "start_time", name="uq_teacher_availability_start"),
    )

    id: uuid.UUID = id_field()
    teacher_id: uuid.UUID = Field(foreign_key="teachers.id", index=True, ondelete="CASCADE")
    weekday: int  # 0 = Monday
    start_time: time
    end_time: time


class TeacherTimeOff(SQLModel, table=True):
    __tablename__ = "teacher_time_off"
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="ck_teacher_time_off_order"),)

    id: uuid.UUID = id_field()
    teacher_id: uuid.UUID = Field(foreign_key="teachers.id", index=True, ondelete="CASCADE")
    starts_at: datetime = tz_field()
    ends_at: datetime = tz_field()
    reason: str = Field(default="", max_length=200)


class AcademicYear(SQLModel, table=True):
    __tablename__ = "academic_years"
    __table_args__ = (CheckConstraint("end_date > start_date", name="ck_academic_years_order"),)

    id: uuid.UUID = id_field()
    name: str = Field(max_length=32, unique=True)
    start_date: date
    end_date: date


class Semester(SQLModel, table=True):
    __tablename__ = "semesters"
    __table_args__ = (
        CheckConstraint("end_date > start_date", name="ck_semesters_order"),
        UniqueConstraint("academic_year_id", "name", name="uq_semesters_year_name"),
    )

    id: uuid.UUID = id_field()
    academic_year_id: uuid.UUID = Field(foreign_key="academic_years.id", index=True, ondelete="CASCADE")
    name: str = Field(max_length=64)
    start_date: date
    end_date: date


class Closure(SQLModel, table=True):
    """Days the school is closed (holidays, breaks): no lessons are booked on them. Lessons booked before the
    closure was added are cancelled or moved by its workflow (``workflows/closures.py``), as ``lesson_action``
    says; ``outcome`` is that workflow's count once it finished."""

    __tablename__ = "closures"
    __table_args__ = (
        CheckConstraint("end_date >= start_date", name="ck_closures_order"),
        CheckConstraint("lesson_action IN ('cancel', 'move')", name="ck_closures_lesson_action"),
    )

    id: uuid.UUID = id_field()
    academic_year_id: uuid.UUID = Field(foreign_key="academic_years.id", index=True, ondelete="CASCADE")
    start_date: date
    end_date: date
    reason: str = Field(max_length=200)
    lesson_action: str = Field(default="cancel", max_length=8)
    outcome: dict[str, Any] | None = Field(default=None, sa_type=JSONB, nullable=True)
    created_at: datetime = created_at_field()
