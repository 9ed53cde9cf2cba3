"""Opening re-enrollment, shared by the office's route (``api/services/reenrollments.py``) and the daily schedule
(``activities/reenrollment.py``), so both offer the same families: those with an active enrollment that has
regular lessons in the ending semester. Each family's workflow is started once (its id is the family's and the
semester's; a second start, even after it closed, finds the first)."""

from __future__ import annotations

import contextlib
import uuid
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from core.contracts.reenrollment import (
    REENROLLMENT_WORKFLOW,
    Default,
    ReenrollmentInput,
    reenrollment_workflow_id,
)
from core.settings import Settings
from domain.enrollment_rules import EnrollmentState
from domain.reenrollment import SemesterDates
from models import Enrollment, Lesson, LessonKind, Semester

# Lessons that count as the semester's: booked or held (a cancelled one does not make a student returning).
_COUNTED = ("scheduled", "completed", "suspended", "no_show")


def local_day_bounds(start: date, end: date, settings: Settings) -> tuple[datetime, datetime]:
    """The instants of local midnight on ``start`` and after ``end``: a semester's lessons start in between."""
    tz = settings.timezone
    return datetime.combine(start, time(0), tzinfo=tz), datetime.combine(end + timedelta(days=1), time(0), tzinfo=tz)


async def all_semesters(session: AsyncSession) -> list[SemesterDates]:
    rows = await session.execute(select(col(Semester.id), col(Semester.start_date), col(Semester.end_date)))
    return [SemesterDates(id_, start, end) for id_, start, end in rows]


async def families_to_offer(session: AsyncSession, settings: Settings, semester: SemesterDates) -> list[uuid.UUID]:
    """Parents with an active enrollment that has regular lessons in ``semester``."""
    since, before = local_day_bounds(semester.start, semester.end, settings)
    rows = await session.scalars(
        select(col(Enrollment.parent_id))
        .join(Lesson, col(Lesson.enrollment_id) == col(Enrollment.id))
        .where(
            col(Enrollment.state) == EnrollmentState.ACTIVE,
            col(Enrollment.parent_id).is_not(None),
            col(Lesson.kind) == LessonKind.regular,
            col(Lesson.status).in_(_COUNTED),
            col(Lesson.starts_at) >= since,
            col(Lesson.starts_at) < before,
        )
        .distinct()
    )
    return sorted((parent for parent in rows if parent is not None), key=str)


async def start_reenrollments(
    client: Client,
    settings: Settings,
    parents: list[uuid.UUID],
    semester_id: uuid.UUID,
    next_semester_id: uuid.UUID,
    deadline: datetime,
    default: Default,
) -> list[str]:
    """Starts each family's re-enrollment (a family's running or finished one is left as it is); its ids."""
    ids = []
    for parent_id in parents:
        workflow_id = reenrollment_workflow_id(parent_id, semester_id)
        request = ReenrollmentInput(
            parent_id=parent_id,
            semester_id=semester_id,
            next_semester_id=next_semester_id,
            deadline=deadline,
            default=default,
            reminder_before=settings.reenrollment_reminder_before,
        )
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await client.start_workflow(
                REENROLLMENT_WORKFLOW,
                request,
                id=workflow_id,
                task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"Re-enrollment offer, answer by {deadline:%Y-%m-%d}",
            )
        ids.append(workflow_id)
    return ids
