"""Request and response bodies for the school calendar: academic years, semesters and closures."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, model_validator

from api.schemas.common import PatchModel, RequestModel, ResponseModel, ShortText

YearName = Annotated[str, Field(min_length=1, max_length=32)]
TermName = Annotated[str, Field(min_length=1, max_length=64)]
Reason = Annotated[ShortText, Field(min_length=1)]


class _Dated:
    """Refuses a body whose end date is not after its start date (closures may be a single day)."""

    same_day_allowed: ClassVar[bool] = False

    @model_validator(mode="after")
    def _ordered(self) -> Any:
        start, end = getattr(self, "start_date", None), getattr(self, "end_date", None)
        if start is not None and end is not None and (end < start or (end == start and not self.same_day_allowed)):
            raise ValueError("end_date must be after start_date")
        return self


class SemesterOut(ResponseModel):
    id: uuid.UUID
    academic_year_id: uuid.UUID
    name: str
    start_date: date
    end_date: date


class ClosureOutcomeOut(ResponseModel):
    """What the closure's workflow did with the lessons already booked on its days."""

    lessons: int
    cancelled: int
    moved: int
    credited: int
    families_told: int
    teachers_told: int
    done: bool


class ClosureOut(ResponseModel):
    id: uuid.UUID
    academic_year_id: uuid.UUID
    start_date: date
    end_date: date
    reason: str
    lesson_action: str = "cancel"
    # Null until the closure's workflow has handled the lessons booked on its days.
    outcome: ClosureOutcomeOut | None = None


class AcademicYearOut(ResponseModel):
    id: uuid.UUID
    name: str
    start_date: date
    end_date: date


class AcademicYearDetail(AcademicYearOut):
    semesters: list[SemesterOut]
    closures: list[ClosureOut]


class AcademicYearCreate(_Dated, RequestModel):
    name: YearName
    start_date: date
    end_date: date


class AcademicYearUpdate(_Dated, PatchModel):
    name: YearName | None = None
    start_date: date | None = None
    end_date: date | None = None


class SemesterCreate(_Dated, RequestModel):
    name: TermName
    start_date: date
    end_date: date


class SemesterUpdate(_Dated, PatchModel):
    name: TermName | None = None
    start_date: date | None = None
    end_date: date | None = None


class ClosureCreate(_Dated, RequestModel):
    same_day_allowed: ClassVar[bool] = True

    start_date: date
    end_date: date
    reason: Reason
    # Lessons already booked on these days: cancelled with a make-up credit each, or moved to the teacher's
    # nearest free slot after the closure (cancelled and credited when there is none).
    lesson_action: Literal["cancel", "move"] = "cancel"


class ClosureUpdate(_Dated, PatchModel):
    same_day_allowed: ClassVar[bool] = True

    start_date: date | None = None
    end_date: date | None = None
    reason: Reason | None = None
