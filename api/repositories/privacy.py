"""PIPEDA access and erasure for one family: everything Cedar holds about it, and forgetting it.

Erasure blanks personal fields and keeps money records (invoices, payments, the ledger), which tax law
obliges the school to retain; those rows point at the family only by id.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from api.errors import Conflict, NotFound
from api.repositories.accounts import deactivate_account
from core.identity import IdentityService
from domain.enrollment_rules import CLOSED_STATES, EnrollmentState
from models import (
    AuditLog,
    BillingAccount,
    Communication,
    Consent,
    Enrollment,
    Invoice,
    Lesson,
    LessonStatus,
    Parent,
    Payment,
    Student,
    User,
)

ERASED = "Erased"
LIVE_ENROLLMENT_STATES = [s.value for s in EnrollmentState if s not in CLOSED_STATES]


def _rows(items: list[Any]) -> list[dict[str, Any]]:
    return [item.model_dump(mode="json") if isinstance(item, SQLModel) else item for item in items]


async def _all(session: AsyncSession, statement: Any) -> list[Any]:
    return list((await session.scalars(statement)).all())


async def family_export(session: AsyncSession, parent_id: uuid.UUID) -> dict[str, Any]:
    parent = await session.get(Parent, parent_id)
    if parent is None:
        raise NotFound("parent")
    students = await _all(session, select(Student).where(col(Student.parent_id) == parent_id))
    student_ids = [s.id for s in students]
    account = await session.scalar(select(BillingAccount).where(col(BillingAccount.parent_id) == parent_id))
    account_ids = [account.id] if account else []
    user = await session.get(User, parent.user_id) if parent.user_id else None
    return {
        "exported_at": datetime.now(UTC).isoformat(),
        "parent": parent.model_dump(mode="json"),
        "account": {"email": user.email, "role": user.role, "created_at": user.created_at.isoformat()}
        if user
        else None,
        "students": _rows(students),
        "enrollments": _rows(await _all(session, select(Enrollment).where(col(Enrollment.parent_id) == parent_id))),
        "lessons": _rows(await _all(session, select(Lesson).where(col(Lesson.student_id).in_(student_ids)))),
        "consents": _rows(await _all(session, select(Consent).where(col(Consent.parent_id) == parent_id))),
        "communications": _rows(
            await _all(session, select(Communication).where(col(Communication.parent_id) == parent_id))
        ),
        "invoices": _rows(await _all(session, select(Invoice).where(col(Invoice.billing_account_id).in_(account_ids)))),
        "payments": _rows(await _all(session, select(Payment).where(col(Payment.billing_account_id).in_(account_ids)))),
        "audit_log": _rows(
            await _all(
                session,
                select(AuditLog)
                .where(col(AuditLog.entity_id).in_([str(parent_id), *map(str, student_ids)]))
                .order_by(col(AuditLog.occurred_at)),
            )
        ),
    }


async def erase_family(session: AsyncSession, identity: IdentityService, parent_id: uuid.UUID) -> dict[str, int]:
    """Blanks the family's personal data in place; refuses while a child still has a live enrollment."""
    parent = await session.get(Parent, parent_id, with_for_update=True)
    if parent is None:
        raise NotFound("parent")
    if parent.erased_at is not None:
        return {"students": 0, "enrollments": 0, "communications": 0, "lessons_cancelled": 0}
    live = await session.scalar(
        select(func.count())
        .select_from(Enrollment)
        .where(col(Enrollment.parent_id) == parent_id, col(Enrollment.state).in_(LIVE_ENROLLMENT_STATES))
    )
    if live:
        raise Conflict("cancel the family's live enrollments before erasing it", {"parent_id": f"{live} live"})

    now = datetime.now(UTC)
    erased_email = f"erased-{parent.id}@erased.invalid"
    students = await _all(session, select(Student).where(col(Student.parent_id) == parent_id))
    for student in students:
        student.first_name = student.last_name = ERASED
        # The birth year stays for the school's age statistics; the day and month identify a child.
        student.date_of_birth = date(student.date_of_birth.year, 1, 1)
        student.is_active = False
    # An UPDATE answers with a CursorResult, whose rowcount the counts below need; execute() is typed as Result.
    cancelled = cast(
        CursorResult[Any],
        await session.execute(
            update(Lesson)
            .where(
                col(Lesson.student_id).in_([s.id for s in students]),
                col(Lesson.starts_at) > now,
                col(Lesson.status) == LessonStatus.scheduled,
            )
            .values(status=LessonStatus.cancelled, updated_at=now)
        ),
    )
    enrollments = cast(
        CursorResult[Any],
        await session.execute(
            update(Enrollment)
            .where(col(Enrollment.parent_id) == parent_id)
            .values(application={"erased_at": now.isoformat()}, updated_at=now)
        ),
    )
    communications = cast(
        CursorResult[Any],
        await session.execute(
            update(Communication).where(col(Communication.parent_id) == parent_id).values(recipient=erased_email)
        ),
    )
    if parent.user_id is not None:
        # Deactivated first, while the provider still knows it by its address and external id.
        await deactivate_account(session, identity, parent.user_id)
        user = await session.get(User, parent.user_id)
        if user is not None:
            user.email, user.password_hash, user.external_id = erased_email, None, None
    parent.first_name = parent.last_name = ERASED
    parent.email, parent.phone, parent.erased_at = erased_email, "", now
    return {
        "students": len(students),
        "enrollments": enrollments.rowcount,
        "communications": communications.rowcount,
        "lessons_cancelled": cancelled.rowcount,
    }
