"""The contracts of a family's re-enrollment (``ReenrollmentWorkflow``, one per family and ending semester,
``reenrollment-{parent_id}-{semester_id}``) and of the daily opening (``ReenrollmentOpeningWorkflow``).

The workflow offers the family's active students the next semester, takes the family's answers (update ``answer``)
until the deadline, applies the school's default to the unanswered, then books the returning students' next
semester on their enrollment and tells their enrollment workflow (``continue_next_semester``) and billing
(``lessons_booked``); the others' enrollments are told to ``finish``. Only ids, times and answers travel here.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from typing import Literal

from pydantic import BaseModel, Field

REENROLLMENT_WORKFLOW = "ReenrollmentWorkflow"
REENROLLMENT_OPENING_WORKFLOW = "ReenrollmentOpeningWorkflow"
UPDATE_ANSWER = "answer"
QUERY_STATUS = "status"

_PREFIX = "reenrollment-"
_UUID_LENGTH = 36

Default = Literal["return", "end"]
AnsweredBy = Literal["family", "office", "default"]


def reenrollment_workflow_id(parent_id: uuid.UUID | str, semester_id: uuid.UUID | str) -> str:
    """One re-enrollment per family and ending semester: starting it again finds the running one."""
    return f"{_PREFIX}{parent_id}-{semester_id}"


def parse_reenrollment_id(reenrollment_id: str) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(parent id, semester id) of a re-enrollment's id, or None when it is not one."""
    rest = reenrollment_id.removeprefix(_PREFIX)
    if rest == reenrollment_id or len(rest) != 2 * _UUID_LENGTH + 1 or rest[_UUID_LENGTH] != "-":
        return None
    try:
        return uuid.UUID(rest[:_UUID_LENGTH]), uuid.UUID(rest[_UUID_LENGTH + 1 :])
    except ValueError:
        return None


class ReenrollmentInput(BaseModel):
    parent_id: uuid.UUID
    semester_id: uuid.UUID  # the semester ending
    next_semester_id: uuid.UUID
    deadline: datetime
    default: Default
    reminder_before: timedelta


class Offer(BaseModel):
    """One student's next semester: same teacher, weekday and local time (or the nearest free slot)."""

    enrollment_id: uuid.UUID
    student_id: uuid.UUID
    teacher_id: uuid.UUID
    weekday: int
    local_time: time
    lesson_minutes: int
    same_as_now: bool


class OfferAnswer(BaseModel):
    enrollment_id: uuid.UUID
    returning: bool


class AnswerRequest(BaseModel):
    """API → workflow: the family's (or the office's) answers; later answers replace earlier ones until the
    deadline."""

    answers: list[OfferAnswer] = Field(min_length=1, max_length=50)
    answered_by: AnsweredBy = "family"
    actor_user_id: uuid.UUID | None = None


class OfferStatus(BaseModel):
    offer: Offer
    returning: bool | None = None  # None: not answered (yet)
    answered_by: AnsweredBy | None = None
    answered_at: datetime | None = None
    outcome: Literal["open", "booked", "finished", "unavailable"] = "open"


class ReenrollmentStatus(BaseModel):
    """The query's and the update's answer, and the workflow's result."""

    state: Literal["opening", "open", "answered", "closing", "closed"]
    deadline: datetime
    default: Default
    offers: list[OfferStatus] = Field(default_factory=list)


# --- activities ----------------------------------------------------------------------------------------------


class BuildOffers(BaseModel):
    parent_id: uuid.UUID
    semester_id: uuid.UUID
    next_semester_id: uuid.UUID
    deadline: datetime
    default: Default


class Offers(BaseModel):
    offers: list[Offer]
    next_semester_name: str


class RecordAnswers(BaseModel):
    next_semester_id: uuid.UUID
    answers: list[OfferAnswer]
    answered_by: AnsweredBy
    actor_user_id: uuid.UUID | None = None
    answered_at: datetime


class RecordOutcome(BaseModel):
    enrollment_id: uuid.UUID
    next_semester_id: uuid.UUID
    outcome: Literal["booked", "finished", "unavailable"]


class ContinueEnrollment(BaseModel):
    """Tell the enrollment's workflow that next semester's lessons are booked (update ``continue_next_semester``)."""

    enrollment_id: uuid.UUID
    lessons_end: datetime


class FinishEnrollment(BaseModel):
    """Tell the enrollment's workflow that the student is not returning (update ``finish``)."""

    enrollment_id: uuid.UUID


class FinishOutcome(BaseModel):
    """Whether the enrollment's workflow took the ``finish``; when it no longer runs (it predates semester ends
    and ended at its last lesson) the re-enrollment completes the still active enrollment itself."""

    told: bool
    running: bool
    state: str
    last_lesson_ends_at: datetime | None = None


class OpenReenrollment(BaseModel):
    """The daily opening's input; empty so fields can be added without breaking the schedule."""


class OpenedReenrollments(BaseModel):
    semesters: int = 0
    families: int = 0
