"""Dunning's database work: the family's dunning state, its lessons (suspend, restore, cancel), its enrollments
and teachers' capacity on cancellation, and the facts its emails need. Money is billing's; this never touches it.

Every method is idempotent: each UPDATE only moves rows that are still in the state it moves them from.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Row, Select, select, update
from sqlmodel import col
from temporalio import activity

from activities.enrollment import release_seat
from core.contracts.dunning import DunningConfig, FamilyRef, LessonsChanged, RecordDunningState, TeacherLessons
from core.db import SessionFactory, transaction
from core.page_links import CARD_PATH
from core.settings import Settings
from domain.enrollment_rules import EnrollmentState
from domain.local_time import format_local
from models import (
    BillingAccount,
    Enrollment,
    Lesson,
    LessonStatus,
    Student,
)

# Where a parent replaces the card: the card page (api/pages/family.py) for whoever is signed in as the family's
# parent (sign-in first when not). The emails link to it.
CARD_UPDATE_PATH = CARD_PATH


def _family_students(parent_id: uuid.UUID) -> Select[Any]:
    """The ids of the family's children, as a subquery."""
    return select(col(Student.id)).where(col(Student.parent_id) == parent_id)


def _changed(
    rows: Sequence[Row[uuid.UUID, uuid.UUID, datetime]], tz: ZoneInfo, enrollments_cancelled: int = 0
) -> LessonsChanged:
    """Rows of (lesson id, teacher id, starts_at) grouped by teacher, earliest lesson first."""
    by_teacher: dict[uuid.UUID, list[datetime]] = defaultdict(list)
    for _, teacher_id, starts_at in rows:
        by_teacher[teacher_id].append(starts_at)
    return LessonsChanged(
        lesson_ids=[row[0] for row in rows],
        teachers=[
            TeacherLessons(teacher_id=teacher_id, lesson_times=[format_local(at, tz) for at in sorted(times)])
            for teacher_id, times in sorted(by_teacher.items(), key=lambda item: str(item[0]))
        ],
        enrollments_cancelled=enrollments_cancelled,
    )


class DunningActivities:
    def __init__(self, sessions: SessionFactory, settings: Settings) -> None:
        self._sessions = sessions
        self._settings = settings

    @activity.defn(name="dunning.config")
    async def config(self, family: FamilyRef) -> DunningConfig:
        settings = self._settings
        return DunningConfig(
            warning_after=settings.dunning_warning_after,
            suspend_after=settings.dunning_suspend_after,
            cancel_after=settings.dunning_cancel_after,
            retry_offsets=settings.dunning_retry_offsets,
            unknown_recheck_after=settings.dunning_unknown_recheck_after,
            retries_owner=settings.payment_retries_owner,
            school_timezone=settings.school_timezone,
            currency=settings.currency,
            card_update_url=settings.public_base_url + CARD_UPDATE_PATH,
            public_base_url=settings.public_base_url,
        )

    @activity.defn(name="dunning.record_state")
    async def record_state(self, data: RecordDunningState) -> bool:
        """Mirrors the workflow's state on billing_accounts (admin lists, the sweep); False if no account yet."""
        async with transaction(self._sessions) as session:
            result = await session.execute(
                update(BillingAccount)
                .where(col(BillingAccount.parent_id) == data.parent_id)
                .values(dunning_state=data.state, dunning_paused=data.paused, updated_at=datetime.now(UTC))
                .returning(col(BillingAccount.id))
            )
            return result.first() is not None

    @activity.defn(name="dunning.suspend_lessons")
    async def suspend_lessons(self, family: FamilyRef) -> LessonsChanged:
        """Holds the family's future lessons (suspended, not deleted: their slots stay theirs)."""
        return await self._move_future_lessons(family.parent_id, (LessonStatus.scheduled,), LessonStatus.suspended)

    @activity.defn(name="dunning.restore_lessons")
    async def restore_lessons(self, family: FamilyRef) -> LessonsChanged:
        """Gives the family back its suspended lessons that are still ahead."""
        return await self._move_future_lessons(family.parent_id, (LessonStatus.suspended,), LessonStatus.scheduled)

    @activity.defn(name="dunning.cancel_family")
    async def cancel_family(self, family: FamilyRef) -> LessonsChanged:
        """Cancellation for non-payment: future lessons cancelled, active enrollments cancelled, and each
        enrollment's seat given back to its teacher, in one transaction."""
        now = datetime.now(UTC)
        async with transaction(self._sessions) as session:
            lessons = await session.execute(
                update(Lesson)
                .where(
                    col(Lesson.student_id).in_(_family_students(family.parent_id)),
                    col(Lesson.status).in_((LessonStatus.scheduled, LessonStatus.suspended)),
                    col(Lesson.starts_at) > now,
                )
                .values(status=LessonStatus.cancelled, updated_at=now)
                .returning(col(Lesson.id), col(Lesson.teacher_id), col(Lesson.starts_at))
            )
            moved = lessons.all()
            enrollments = await session.execute(
                update(Enrollment)
                .where(col(Enrollment.parent_id) == family.parent_id, col(Enrollment.state) == EnrollmentState.ACTIVE)
                .values(
                    state=EnrollmentState.CANCELLED,
                    failure_reason="cancelled for non-payment",
                    updated_at=now,
                    completed_at=now,
                )
                .returning(col(Enrollment.teacher_id))
            )
            # Each cancelled enrollment gives its seat back.
            seats = [row[0] for row in enrollments if row[0] is not None]
            for teacher_id in seats:
                await release_seat(session, teacher_id)
            await session.execute(
                update(Student).where(col(Student.parent_id) == family.parent_id).values(is_active=False)
            )
        return _changed(moved, self._settings.timezone, len(seats))

    async def _move_future_lessons(
        self, parent_id: uuid.UUID, from_statuses: tuple[LessonStatus, ...], to_status: LessonStatus
    ) -> LessonsChanged:
        now = datetime.now(UTC)
        async with transaction(self._sessions) as session:
            result = await session.execute(
                update(Lesson)
                .where(
                    col(Lesson.student_id).in_(_family_students(parent_id)),
                    col(Lesson.status).in_(from_statuses),
                    col(Lesson.starts_at) > now,
                )
                .values(status=to_status, updated_at=now)
                .returning(col(Lesson.id), col(Lesson.teacher_id), col(Lesson.starts_at))
            )
            return _changed(result.all(), self._settings.timezone)
