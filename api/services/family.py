"""A family's home page: children, upcoming lessons, billing and any payment problem, read with the caller's
row-level scope and billing's own service (``api/services/billing.py``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.principal import Principal
from api.repositories import family as repository
from api.services import billing
from core.settings import Settings
from models import Invoice, Lesson, Student

UPCOMING = 20
PROBLEM_INVOICES = frozenset({"past_due", "open"})


@dataclass(frozen=True)
class UpcomingLesson:
    lesson: Lesson
    student: Student | None
    teacher: str
    cancellable: bool  # still before the school's notice for parents


@dataclass(frozen=True)
class FamilyOverview:
    students: Sequence[Student]
    lessons: list[UpcomingLesson]
    billing: billing.FamilyBilling | None

    @property
    def unpaid(self) -> list[Invoice]:
        """Invoices a failed payment left unpaid (what the problem box at the top is about)."""
        if self.billing is None:
            return []
        return [i for i in self.billing.invoices if i.status in PROBLEM_INVOICES and i.first_failed_at is not None]


async def overview(session: AsyncSession, settings: Settings, principal: Principal) -> FamilyOverview:
    assert principal.parent_id is not None
    now = datetime.now(UTC)
    students = await repository.students(session, principal)
    lessons = await repository.upcoming_lessons(session, principal, now, UPCOMING)
    names = await repository.teacher_names(session, {lesson.teacher_id for lesson in lessons})
    by_id: dict[uuid.UUID, Student] = {student.id: student for student in students}
    upcoming = [
        UpcomingLesson(
            lesson,
            by_id.get(lesson.student_id),
            names.get(lesson.teacher_id, ""),
            lesson.kind != "demo" and lesson.starts_at - settings.parent_cancel_notice > now,
        )
        for lesson in lessons
    ]
    found = await billing.family_billing(session, principal, principal.parent_id)
    return FamilyOverview(students, upcoming, found)
