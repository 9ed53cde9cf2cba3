"""The contracts of the teacher changes' notices: a substitution (``SubstitutionWorkflow``,
``substitution-{id}``, and ``substitution-{id}-undo`` when it is undone) and a transfer of a student to another
teacher (``TeacherTransferWorkflow``, ``teacher-transfer-{enrollment id}-{from date}``).

The API makes the change in one transaction and starts the workflow after it committed; the workflow tells the
family and each teacher once (one email each, listing the lessons, in the school's local time).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from pydantic import BaseModel, Field

SUBSTITUTION_WORKFLOW = "SubstitutionWorkflow"
TEACHER_TRANSFER_WORKFLOW = "TeacherTransferWorkflow"


class ChangedLesson(BaseModel):
    lesson_id: uuid.UUID
    parent_id: uuid.UUID
    starts_at: datetime
    # Set when the lesson moved to another time (a transfer to a teacher not free at the lesson's own time).
    new_starts_at: datetime | None = None


class SubstitutionNotice(BaseModel):
    substitution_id: uuid.UUID
    regular_teacher_id: uuid.UUID
    substitute_teacher_id: uuid.UUID
    undone: bool = False
    lessons: list[ChangedLesson] = Field(default_factory=list)


class TransferNotice(BaseModel):
    enrollment_id: uuid.UUID
    from_date: date
    parent_id: uuid.UUID
    old_teacher_id: uuid.UUID
    new_teacher_id: uuid.UUID
    lessons: list[ChangedLesson] = Field(default_factory=list)


# --- activities ----------------------------------------------------------------------------------------------


class LessonLines(BaseModel):
    lessons: list[ChangedLesson]


class FormattedLines(BaseModel):
    """The lessons as email lines in the school's local time: all of them, and each family's own."""

    all: str
    by_parent: dict[uuid.UUID, str] = Field(default_factory=dict)
