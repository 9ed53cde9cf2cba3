"""Re-enrollment offers: one row per enrollment and next semester, mirrored from the family's re-enrollment workflow.

The workflow (``reenrollment-{parent_id}-{semester_id}``) decides; the row is what the office and the family's page
read: the offered slot, the answer, who gave it and when, and what became of it at the deadline.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at_field, id_field, tz_field


class ReenrollmentOffer(SQLModel, table=True):
    __tablename__ = "reenrollment_offers"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "next_semester_id", name="uq_reenrollment_offers_enrollment_next"),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_reenrollment_offers_weekday"),
        CheckConstraint("default_answer IN ('return', 'end')", name="ck_reenrollment_offers_default"),
        CheckConstraint(
            "answered_by IS NULL OR answered_by IN ('family', 'office', 'default')",
            name="ck_reenrollment_offers_answered_by",
        ),
        CheckConstraint(
            "outcome IN ('open', 'booked', 'finished', 'unavailable')", name="ck_reenrollment_offers_outcome"
        ),
    )

    id: uuid.UUID = id_field()
    workflow_id: str = Field(max_length=100, index=True)
    parent_id: uuid.UUID = Field(foreign_key="parents.id", index=True)
    enrollment_id: uuid.UUID = Field(foreign_key="enrollments.id", index=True)
    student_id: uuid.UUID = Field(foreign_key="students.id")
    teacher_id: uuid.UUID = Field(foreign_key="teachers.id", index=True)
    semester_id: uuid.UUID = Field(foreign_key="semesters.id", index=True, ondelete="CASCADE")
    next_semester_id: uuid.UUID = Field(foreign_key="semesters.id", index=True, ondelete="CASCADE")
    # The offered weekly lesson, in the school's local time.
    weekday: int
    local_time: time
    lesson_minutes: int
    same_as_now: bool
    deadline: datetime = tz_field()
    default_answer: str = Field(max_length=8)
    returning: bool | None = None  # None: not answered (yet)
    answered_by: str | None = Field(default=None, max_length=8)
    answered_by_user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id")
    answered_at: datetime | None = tz_field(nullable=True)
    outcome: str = Field(default="open", max_length=16)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
