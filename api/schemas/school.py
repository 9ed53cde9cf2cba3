"""Request and response bodies for families (parents, students, consents) and teachers."""

from __future__ import annotations

import uuid
from datetime import date, datetime, time
from itertools import pairwise
from typing import Annotated, ClassVar

from pydantic import AwareDatetime, Field, model_validator

from api.schemas.common import Code, Email, LongText, Name, PatchModel, Phone, RequestModel, ResponseModel, ShortText
from models import ConsentKind

DisplayName = Annotated[str, Field(min_length=1, max_length=120)]
Instruments = Annotated[list[Code], Field(min_length=1, max_length=10)]
Capacity = Annotated[int, Field(ge=0, le=200)]


class StudentOut(ResponseModel):
    id: uuid.UUID
    parent_id: uuid.UUID
    first_name: str
    last_name: str
    date_of_birth: date
    instrument: str | None
    is_active: bool
    created_at: datetime


class StudentCreate(RequestModel):
    parent_id: uuid.UUID
    first_name: Name
    last_name: Name
    date_of_birth: date
    instrument: Code | None = None


class StudentUpdate(PatchModel):
    nullable: ClassVar[frozenset[str]] = frozenset({"instrument"})
    # What a parent may change about their own child; the rest is the school's.
    parent_editable: ClassVar[frozenset[str]] = frozenset({"first_name", "last_name"})

    first_name: Name | None = None
    last_name: Name | None = None
    date_of_birth: date | None = None
    instrument: Code | None = None
    is_active: bool | None = None


class ParentOut(ResponseModel):
    id: uuid.UUID
    user_id: uuid.UUID | None
    first_name: str
    last_name: str
    email: str
    phone: str
    created_at: datetime
    erased_at: datetime | None


class ParentCreate(RequestModel):
    first_name: Name
    last_name: Name
    email: Email
    phone: Phone


class ParentUpdate(PatchModel):
    # The login's address is the school's to change: a typo would lock the family out.
    staff_only: ClassVar[frozenset[str]] = frozenset({"email"})

    first_name: Name | None = None
    last_name: Name | None = None
    email: Email | None = None
    phone: Phone | None = None


class ConsentOut(ResponseModel):
    id: uuid.UUID
    parent_id: uuid.UUID
    kind: str
    granted: bool
    policy_version: str
    source: str
    granted_at: datetime
    withdrawn_at: datetime | None


class ConsentChange(RequestModel):
    kind: ConsentKind
    granted: bool


# What the school pays per hour taught, in minor units (teacher pay: domain/teacher_pay.py); set by an admin.
HourlyRate = Annotated[int, Field(ge=0, le=100_000_00, description="pay per hour taught, in minor units")]


class TeacherOut(ResponseModel):
    id: uuid.UUID
    user_id: uuid.UUID | None
    first_name: str
    last_name: str
    display_name: str
    email: str
    bio: str
    instruments: list[str]
    capacity: int
    active_students: int
    is_active: bool
    hourly_rate_minor: int
    created_at: datetime


class TeacherCreate(RequestModel):
    first_name: Name
    last_name: Name
    display_name: DisplayName
    email: Email
    bio: LongText = ""
    instruments: Instruments
    capacity: Capacity = 20
    hourly_rate_minor: HourlyRate = 0


class TeacherUpdate(PatchModel):
    # What teachers may change on their own profile; instruments, capacity and status are the school's.
    teacher_editable: ClassVar[frozenset[str]] = frozenset({"display_name", "bio"})

    first_name: Name | None = None
    last_name: Name | None = None
    display_name: DisplayName | None = None
    email: Email | None = None
    bio: LongText | None = None
    instruments: Instruments | None = None
    capacity: Capacity | None = None
    is_active: bool | None = None
    hourly_rate_minor: HourlyRate | None = None


class AvailabilityWindow(RequestModel):
    """A weekly window in the school's local time: weekday 0 = Monday … 6 = Sunday."""

    weekday: int = Field(ge=0, le=6)
    start_time: time
    end_time: time

    @model_validator(mode="after")
    def _ordered(self) -> AvailabilityWindow:
        if self.end_time <= self.start_time:
            raise ValueError("end_time must be after start_time")
        if self.start_time.tzinfo is not None or self.end_time.tzinfo is not None:
            raise ValueError("times are the school's local wall-clock times, without an offset")
        return self


class AvailabilityOut(ResponseModel):
    id: uuid.UUID
    weekday: int
    start_time: time
    end_time: time


class AvailabilityReplace(RequestModel):
    """The teacher's whole week; it replaces the previous windows."""

    windows: list[AvailabilityWindow] = Field(max_length=50)

    @model_validator(mode="after")
    def _no_overlaps(self) -> AvailabilityReplace:
        ordered = sorted(self.windows, key=lambda w: (w.weekday, w.start_time))
        for before, after in pairwise(ordered):
            if before.weekday == after.weekday and after.start_time < before.end_time:
                raise ValueError(f"windows overlap on weekday {after.weekday} at {after.start_time}")
        return self


class TimeOffCreate(RequestModel):
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: ShortText = ""

    @model_validator(mode="after")
    def _ordered(self) -> TimeOffCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class TimeOffOut(ResponseModel):
    id: uuid.UUID
    teacher_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime
    reason: str
