"""Make-up credits: one per lesson cancelled with a credit (or granted by the office), used at most once.

The row is the truth of a credit's status: conditional updates (``WHERE status = 'available'``) decide every
race, and the unique keys make a second credit for one cancelled lesson, or a second use of one make-up lesson,
impossible. The credit's workflow (``makeup-credit-{id}``) keeps its timers and records what happened.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from domain.makeups import CreditStatus
from models.base import created_at_field, id_field, one_of, tz_field


class MakeupCredit(SQLModel, table=True):
    __tablename__ = "makeup_credits"
    __table_args__ = (
        one_of("status", CreditStatus, "ck_makeup_credits_status"),
        CheckConstraint("(status = 'used') = (used_lesson_id IS NOT NULL)", name="ck_makeup_credits_used_lesson"),
        CheckConstraint("lesson_minutes > 0", name="ck_makeup_credits_minutes"),
    )

    id: uuid.UUID = id_field()
    parent_id: uuid.UUID = Field(foreign_key="parents.id", index=True)
    student_id: uuid.UUID = Field(foreign_key="students.id", index=True)
    # The student's teacher (a make-up is booked with them unless the policy allows any teacher).
    teacher_id: uuid.UUID = Field(foreign_key="teachers.id", index=True)
    instrument: str = Field(max_length=32)
    lesson_minutes: int
    # The cancelled lesson that earned it (none for a credit the office granted): one credit per lesson.
    origin_lesson_id: uuid.UUID | None = Field(default=None, foreign_key="lessons.id", unique=True)
    reason: str = Field(default="", max_length=500)
    status: str = Field(default=CreditStatus.available, max_length=16, index=True)
    expires_at: datetime = tz_field()
    # The make-up lesson it paid for: one credit per make-up lesson.
    used_lesson_id: uuid.UUID | None = Field(default=None, foreign_key="lessons.id", unique=True)
    used_at: datetime | None = tz_field(nullable=True)
    reminder_sent_at: datetime | None = tz_field(nullable=True)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
