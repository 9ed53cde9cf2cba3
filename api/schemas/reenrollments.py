"""Request and response bodies of re-enrollment: opening it, a family's offers and answers, the office's list
and a semester's weekly schedule per teacher."""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Literal

from pydantic import AwareDatetime, Field

from api.schemas.common import RequestModel, ResponseModel
from domain.reenrollment import Answer


class ReenrollmentOpen(RequestModel):
    """All optional: the next semester is the first starting after this one ends, the deadline is now plus
    ``CEDAR_REENROLLMENT_ANSWER_TIME``, the default is ``CEDAR_REENROLLMENT_DEFAULT``."""

    next_semester_id: uuid.UUID | None = None
    deadline: AwareDatetime | None = None
    default: Literal["return", "end"] | None = None


class ReenrollmentOpened(ResponseModel):
    semester_id: uuid.UUID
    next_semester_id: uuid.UUID
    deadline: datetime
    default: str
    families: int
    reenrollment_ids: list[str]


class AnswerIn(RequestModel):
    enrollment_id: uuid.UUID
    returning: bool


class AnswersIn(RequestModel):
    answers: list[AnswerIn] = Field(min_length=1, max_length=50)


class OfferOut(ResponseModel):
    reenrollment_id: str
    parent_id: uuid.UUID
    enrollment_id: uuid.UUID
    student_id: uuid.UUID
    student_first_name: str
    student_last_name: str
    instrument: str
    teacher_id: uuid.UUID
    teacher_display_name: str
    weekday: int
    weekday_name: str
    local_time: time
    lesson_minutes: int
    same_as_now: bool
    answer: Answer
    answered_by: str | None
    answered_at: datetime | None
    outcome: str


class ReenrollmentOut(ResponseModel):
    reenrollment_id: str
    parent_id: uuid.UUID
    semester_id: uuid.UUID
    next_semester_id: uuid.UUID
    next_semester_name: str
    deadline: datetime
    default: str
    open: bool
    offers: list[OfferOut]


class ScheduleRowOut(ResponseModel):
    teacher_id: uuid.UUID
    teacher_display_name: str
    student_id: uuid.UUID
    student_first_name: str
    student_last_name: str
    weekday: int
    weekday_name: str
    local_time: time
    lesson_minutes: int
    lessons: int
