"""Request and response bodies for the public catalogue (instruments, rates, teachers) and system settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, JsonValue

from api.schemas.common import Code, PatchModel, RequestModel, ResponseModel

Price = Annotated[int, Field(gt=0, le=10_000_000, description="minor units (cents)")]


class InstrumentOut(ResponseModel):
    code: str
    name: str
    is_active: bool


class InstrumentCreate(RequestModel):
    code: Code
    name: Annotated[str, Field(min_length=1, max_length=64)]


class InstrumentUpdate(PatchModel):
    name: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    is_active: bool | None = None


class RateOut(ResponseModel):
    id: uuid.UUID
    instrument: str
    minutes: int
    weekly_price_minor: int
    monthly_price_minor: int
    currency: str


class RateCreate(RequestModel):
    instrument: Code
    minutes: int = Field(ge=15, le=240)
    weekly_price_minor: Price
    monthly_price_minor: Price
    currency: Annotated[str, Field(pattern=r"^[a-z]{3}$")] = "cad"


class RateUpdate(PatchModel):
    weekly_price_minor: Price | None = None
    monthly_price_minor: Price | None = None


class TeacherProfile(ResponseModel):
    """What anyone may know about a teacher: no email, no load, no surname."""

    id: uuid.UUID
    display_name: str
    bio: str
    instruments: list[str]


class EnrollmentOptions(ResponseModel):
    instruments: list[InstrumentOut]
    lesson_lengths_minutes: list[int]
    billing_intervals: list[str]
    rates: list[RateOut]
    student_min_age: int
    student_max_age: int
    currency: str
    timezone: str


class SystemSettingOut(ResponseModel):
    key: str
    value: JsonValue
    description: str
    updated_at: datetime


class SystemSettingPut(RequestModel):
    value: JsonValue
    description: Annotated[str, Field(max_length=500)] = ""
