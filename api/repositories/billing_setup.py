"""Billing set-up for imported families: their enrollments waiting for a card, their lessons, and whether the
invitation went out."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.billing_setup import awaits_card
from domain.enrollment_rules import EnrollmentState
from models import (
    Communication,
    CommunicationStatus,
    Enrollment,
    Lesson,
    LessonKind,
    LessonStatus,
    Parent,
    Student,
    Subscription,
)


def invite_key(parent_id: uuid.UUID) -> str:
    """The invitation's dedup key: one email per parent, however often the office or the import asks."""
    return f"billing-setup-invite:{parent_id}"


async def awaiting_card(
    session: AsyncSession, parent_id: uuid.UUID | None = None, *, lock: bool = False
) -> list[Enrollment]:
    """The imported active enrollments never handed to billing (of one family, or of all), oldest first; locked
    ``FOR UPDATE`` when ``lock``, so two submits of the same family hand each one over once."""
    query = (
        select(Enrollment)
        .where(
            col(Enrollment.state) == EnrollmentState.ACTIVE.value,
            col(Enrollment.stripe_payment_method_id) == "",
            col(Enrollment.parent_id).is_not(None),
        )
        .order_by(col(Enrollment.created_at), col(Enrollment.id))
    )
    if parent_id is not None:
        query = query.where(col(Enrollment.parent_id) == parent_id)
    if lock:
        query = query.with_for_update()
    rows = (await session.scalars(query)).all()
    return [e for e in rows if awaits_card(e.state, e.application, e.stripe_payment_method_id)]


async def imported_enrollments(session: AsyncSession, parent_id: uuid.UUID) -> int:
    """How many enrollments the import made for the family (any state): whether it is an imported family."""
    rows = (await session.scalars(select(Enrollment).where(col(Enrollment.parent_id) == parent_id))).all()
    return sum(1 for e in rows if e.application.get("source") == "import")


async def held_lesson_starts(session: AsyncSession, enrollment_id: uuid.UUID) -> list[datetime]:
    """When each of the enrollment's regular lessons that happen (or happened) starts: what billing counts."""
    return list(
        (
            await session.scalars(
                select(col(Lesson.starts_at)).where(
                    col(Lesson.enrollment_id) == enrollment_id,
                    col(Lesson.kind) == LessonKind.regular,
                    col(Lesson.status).not_in([LessonStatus.cancelled]),
                )
            )
        ).all()
    )


async def parents(session: AsyncSession, parent_ids: Sequence[uuid.UUID]) -> list[Parent]:
    if not parent_ids:
        return []
    rows = await session.scalars(select(Parent).where(col(Parent.id).in_(parent_ids)).order_by(col(Parent.email)))
    return list(rows.all())


async def invited(session: AsyncSession, parent_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, datetime | None]:
    """The parents whose invitation went out, with when."""
    if not parent_ids:
        return {}
    keys = {invite_key(p): p for p in parent_ids}
    rows = await session.execute(
        select(col(Communication.dedup_key), col(Communication.sent_at)).where(
            col(Communication.dedup_key).in_(list(keys)), col(Communication.status) == CommunicationStatus.sent
        )
    )
    return {keys[key]: sent_at for key, sent_at in rows.all()}


async def student_names(session: AsyncSession, student_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not student_ids:
        return {}
    rows = await session.execute(
        select(col(Student.id), col(Student.first_name)).where(col(Student.id).in_(list(student_ids)))
    )
    return dict(rows.all())


async def subscribed(session: AsyncSession, enrollment_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
    """The enrollments billing already made a subscription for."""
    if not enrollment_ids:
        return set()
    rows = await session.scalars(
        select(col(Subscription.enrollment_id)).where(col(Subscription.enrollment_id).in_(list(enrollment_ids)))
    )
    return set(rows.all())
