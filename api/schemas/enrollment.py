"""Requests and responses of ``/api/v1/enrollments``.

What the form itself can check is checked here (names, email, phone, windows, consent); what depends on the
school (the instruments it teaches now, its lesson lengths and ages) is checked by :func:`settings_problems`.
Both answer 422 with one message per field, and nothing is started.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date, datetime, time
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints, field_validator, model_validator

from api.schemas.common import Email, Name, Phone, RequestModel, ResponseModel
from core.contracts.enrollment import DemoOutcome, FamilyDecision
from core.settings import Settings
from domain.enrollment_rules import check_age
from models import BillingInterval

PaymentMethodId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^pm_[A-Za-z0-9_]{1,250}$")]


class ParentIn(RequestModel):
    first_name: Name
    last_name: Name
    email: Email
    phone: Phone

    @field_validator("phone")
    @classmethod
    def _enough_digits(cls, phone: str) -> str:
        digits = sum(c.isdigit() for c in phone)
        if not 7 <= digits <= 15:
            raise ValueError("a phone number has 7 to 15 digits")
        return phone


class StudentIn(RequestModel):
    first_name: Name
    last_name: Name
    date_of_birth: date


class WindowIn(RequestModel):
    """A weekly time the family can come: weekday 0 = Monday … 6 = Sunday, local start and end."""

    weekday: int = Field(ge=0, le=6)
    start: time
    end: time

    @model_validator(mode="after")
    def _ordered(self) -> WindowIn:
        if self.start.tzinfo is not None or self.end.tzinfo is not None:
            raise ValueError("give local times without a timezone")
        if self.end <= self.start:
            raise ValueError("the window must end after it starts")
        return self


class ConsentsIn(RequestModel):
    privacy_policy: bool
    marketing_email: bool = False

    @field_validator("privacy_policy")
    @classmethod
    def _required(cls, accepted: bool) -> bool:
        if not accepted:
            raise ValueError("the privacy policy must be accepted to enroll")
        return accepted


class EnrollmentCreate(RequestModel):
    # Optional only for a signed-in parent enrolling a sibling: the family's own details are used then.
    parent: ParentIn | None = None
    student: StudentIn
    instrument: str = Field(max_length=32)
    lesson_minutes: int
    billing_interval: BillingInterval
    preferred_windows: list[WindowIn] = Field(max_length=21)
    payment_method_id: PaymentMethodId
    consents: ConsentsIn

    @field_validator("preferred_windows")
    @classmethod
    def _at_least_one(cls, windows: list[WindowIn]) -> list[WindowIn]:
        if not windows:
            raise ValueError("give at least one preferred weekly time window")
        return windows


def settings_problems(
    body: EnrollmentCreate, settings: Settings, today: date, instruments: Sequence[str]
) -> dict[str, str]:
    """Field → message for what the school refuses (empty when the application is acceptable): ``instruments``
    are the codes the school teaches now (its ``instruments`` table, which the enrollment options list too)."""
    problems: dict[str, str] = {}
    if body.instrument not in instruments:
        problems["instrument"] = f"unknown instrument; choose one of {', '.join(sorted(instruments))}"
    if body.lesson_minutes not in settings.lesson_lengths_minutes:
        lengths = ", ".join(str(m) for m in settings.lesson_lengths_minutes)
        problems["lesson_minutes"] = f"lessons last {lengths} minutes"
    age_problem = check_age(body.student.date_of_birth, today, settings.student_min_age, settings.student_max_age)
    if age_problem:
        problems["student.date_of_birth"] = age_problem
    return problems


class EnrollmentAccepted(BaseModel):
    enrollment_id: uuid.UUID
    state: str
    status_url: str


class EnrollmentSummaryOut(ResponseModel):
    """One enrollment in the staff's list: states, ids and the child's first name (staff reads are audited)."""

    id: uuid.UUID
    state: str
    instrument: str
    lesson_minutes: int
    billing_interval: str
    student_first_name: str
    parent_id: uuid.UUID | None
    student_id: uuid.UUID | None
    teacher_id: uuid.UUID | None
    demo_lesson_id: uuid.UUID | None
    failure_reason: str | None
    created_at: datetime
    updated_at: datetime

    @model_validator(mode="before")
    @classmethod
    def _child_from_application(cls, row: Any) -> Any:
        if isinstance(row, dict):
            return row
        values = {name: getattr(row, name) for name in cls.model_fields if hasattr(row, name)}
        application = getattr(row, "application", None) or {}
        values["student_first_name"] = str(application.get("student", {}).get("first_name", ""))
        return values


class StepOut(BaseModel):
    state: str
    at: datetime


class EnrollmentStatusOut(BaseModel):
    """What anyone holding the enrollment's id may see: no names, contacts or birth dates."""

    enrollment_id: uuid.UUID
    state: str
    steps: list[StepOut]
    instrument: str
    lesson_minutes: int
    teacher_display_name: str | None = None
    demo_lesson_at: datetime | None = Field(default=None, description="the demo's start, in the school's timezone")
    demo_lesson_local: str | None = Field(default=None, description="the same, as people read it")
    failure_reason: str | None = None


class DemoOutcomeIn(RequestModel):
    outcome: DemoOutcome


class CancelIn(RequestModel):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)] = (
        "cancelled on request"
    )


class FamilyConfirmationIn(RequestModel):
    """The existing family's answer, with the secret from the emailed link."""

    token: Annotated[str, StringConstraints(strip_whitespace=True, min_length=20, max_length=100)]
    decision: FamilyDecision


class AssignTeacherIn(RequestModel):
    teacher_id: uuid.UUID
