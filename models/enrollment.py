"""Enrollments: one row per online application, mirrored from its Temporal workflow."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field, SQLModel

from domain.enrollment_rules import EnrollmentState
from models.base import created_at_field, id_field, json_field, one_of, tz_field


class BillingInterval(StrEnum):
    week = "week"
    month = "month"


class Enrollment(SQLModel, table=True):
    __tablename__ = "enrollments"
    __table_args__ = (
        one_of("state", EnrollmentState, "ck_enrollments_state"),
        one_of("billing_interval", BillingInterval, "ck_enrollments_billing_interval"),
        CheckConstraint("lesson_minutes > 0", name="ck_enrollments_lesson_minutes"),
        # A student learns an instrument through at most one live enrollment.
        Index(
            "uq_enrollments_student_instrument_live",
            "student_id",
            "instrument",
            unique=True,
            postgresql_where=text("state NOT IN ('withdrawn', 'cancelled', 'failed', 'completed')"),
        ),
    )

    id: uuid.UUID = id_field()
    idempotency_key: str | None = Field(default=None, max_length=255, unique=True)
    request_hash: str = Field(max_length=64)
    workflow_id: str = Field(max_length=100, unique=True)
    state: str = Field(default=EnrollmentState.RECEIVED, max_length=32, index=True)
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="parents.id", index=True)
    student_id: uuid.UUID | None = Field(default=None, foreign_key="students.id", index=True)
    teacher_id: uuid.UUID | None = Field(default=None, foreign_key="teachers.id", index=True)
    instrument: str = Field(foreign_key="instruments.code", max_length=32)
    lesson_minutes: int
    billing_interval: str = Field(max_length=8)
    preferred_windows: list[dict[str, Any]] = json_field(list)
    # The application as submitted (names, contact, birth date, consents): personal, never in workflow ids.
    application: dict[str, Any] = json_field()
    stripe_payment_method_id: str = Field(max_length=255)
    # Set when the family this enrollment joins agreed to it: its signed-in parent sent the form, or the owner of
    # the address followed the emailed link. Until then an existing family is never touched.
    family_confirmed_at: datetime | None = tz_field(nullable=True)
    # sha256 of the one-time confirmation link's secret (the link itself is only ever emailed).
    confirmation_token_hash: str | None = Field(default=None, max_length=64)
    demo_lesson_id: uuid.UUID | None = None
    steps: list[dict[str, Any]] = json_field(list)
    failure_reason: str | None = Field(default=None, max_length=1000)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()
    completed_at: datetime | None = tz_field(nullable=True)
