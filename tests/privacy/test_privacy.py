"""PIPEDA: a parent exports their family's data; an admin erases a family and money records survive."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory, transaction
from models import (
    AuditLog,
    BillingAccount,
    Communication,
    Consent,
    Enrollment,
    Lesson,
    Parent,
    Payment,
    Role,
    Student,
    Teacher,
    User,
)
from tests.waiting import eventually


async def _family(sessions: SessionFactory, email: str, state: str = "withdrawn") -> tuple[Parent, Student]:
    async with transaction(sessions) as session:
        user = User(email=email, role=Role.parent, password_hash="x")
        parent = Parent(user_id=user.id, first_name="Rosa", last_name="Diaz", email=email, phone="+16045550199")
        teacher = Teacher(first_name="T", last_name="K", display_name="T K.", email=f"t-{email}", instruments=["piano"])
        session.add_all([user, parent, teacher])
        await session.flush()
        student = Student(parent_id=parent.id, first_name="Lu", last_name="Diaz", date_of_birth=date(2016, 7, 14))
        session.add(student)
        await session.flush()
        start = datetime.now(UTC) + timedelta(days=3)
        enrollment = Enrollment(
            request_hash="h",
            workflow_id=f"enrollment-{email}",
            state=state,
            parent_id=parent.id,
            student_id=student.id,
            teacher_id=teacher.id,
            instrument="piano",
            lesson_minutes=30,
            billing_interval="month",
            application={"parent": {"email": email}},
            stripe_payment_method_id="pm_1",
        )
        account = BillingAccount(parent_id=parent.id, workflow_id=f"family-billing-{parent.id}")
        session.add_all([enrollment, account])
        await session.flush()
        session.add_all(
            [
                Lesson(
                    kind="demo",
                    teacher_id=teacher.id,
                    student_id=student.id,
                    starts_at=start,
                    ends_at=start + timedelta(minutes=30),
                ),
                Consent(parent_id=parent.id, kind="privacy_policy", granted=True),
                Communication(
                    dedup_key=f"welcome:{email}",
                    template="welcome",
                    recipient=email,
                    subject="Hi",
                    parent_id=parent.id,
                    status="sent",
                ),
                Payment(
                    billing_account_id=account.id,
                    status="succeeded",
                    amount_minor=14000,
                    stripe_charge_id=f"ch_{parent.id.hex[:8]}",
                ),
            ]
        )
    return parent, student


async def test_a_parent_exports_their_own_family_and_nobody_elses(
    api: httpx.AsyncClient, sessions: SessionFactory, auth_headers: Callable[..., Any]
) -> None:
    parent, student = await _family(sessions, "rosa@family.example")
    other, _ = await _family(sessions, "other@family.example")
    headers = await auth_headers(Role.parent, user_id=parent.user_id)

    response = await api.get("/api/v1/privacy/export", headers=headers)
    assert response.status_code == 200, response.text
    export = response.json()
    assert export["parent"]["email"] == "rosa@family.example"
    assert [s["id"] for s in export["students"]] == [str(student.id)]
    assert len(export["lessons"]) == 1
    assert len(export["consents"]) == 1
    assert len(export["payments"]) == 1
    assert "other@family.example" not in response.text

    # Another family's export is an admin's business only, and a parent asking for it sees nothing.
    assert (await api.get(f"/api/v1/parents/{other.id}/export", headers=headers)).status_code == 403
    async with sessions() as session:
        actions = (
            await session.scalars(select(col(AuditLog.action)).where(col(AuditLog.entity_id) == str(parent.id)))
        ).all()
    assert actions == ["export"]


async def erased(api: httpx.AsyncClient, admin: dict[str, str], parent_id: object) -> dict[str, Any]:
    """Asks for the family's erasure and waits for its report."""
    response = await api.post(f"/api/v1/parents/{parent_id}/erasure", headers=admin)
    assert response.status_code == 202, response.text

    async def report() -> dict[str, Any] | None:
        body: dict[str, Any] = (await api.get(f"/api/v1/parents/{parent_id}/erasure", headers=admin)).json()
        return body if body.get("status") == "completed" else None

    return await eventually(report, timeout=20, what="the erasure report")


async def test_erasure_blanks_personal_data_and_keeps_money_records(
    api: httpx.AsyncClient,
    sessions: SessionFactory,
    auth_headers: Callable[..., Any],
    run_worker: Callable[..., AbstractAsyncContextManager[Any]],
) -> None:
    parent, student = await _family(sessions, "gone@family.example")
    admin = await auth_headers(Role.admin)

    async with run_worker():
        report = await erased(api, admin, parent.id)
    [blanked] = [step for step in report["steps"] if step["step"] == "blank_rows"]
    assert "lessons_cancelled 1" in blanked["note"]

    async with sessions() as session:
        erased_parent = await session.get(Parent, parent.id)
        child = await session.get(Student, student.id)
        user = await session.get(User, parent.user_id)
        enrollment = await session.scalar(select(Enrollment).where(col(Enrollment.parent_id) == parent.id))
        payment = await session.scalar(select(Payment).where(col(Payment.amount_minor) == 14000))
        recipients = (await session.scalars(select(col(Communication.recipient)))).all()
        audit = await session.scalar(select(AuditLog).where(col(AuditLog.action) == "erase"))
    assert erased_parent is not None
    assert child is not None
    assert user is not None
    assert enrollment is not None
    assert (erased_parent.first_name, erased_parent.phone, erased_parent.erased_at is not None) == ("Erased", "", True)
    assert erased_parent.email.endswith("@erased.invalid")
    assert user.email == erased_parent.email
    assert not user.is_active
    assert user.password_hash is None
    assert (child.first_name, child.date_of_birth) == ("Erased", date(2016, 1, 1))
    assert "gone@family.example" not in str(enrollment.application)
    assert recipients == [erased_parent.email]
    assert payment is not None  # kept: the school must retain its financial records
    assert audit is not None
    assert audit.actor_role == "admin"
    assert "gone@family.example" not in str(audit.after)

    # The erased parent can no longer use their old token.
    assert (
        await api.get("/api/v1/privacy/export", headers=await auth_headers(Role.parent, user_id=user.id))
    ).status_code == 401


async def test_erasure_is_for_admins_and_existing_families_only(
    api: httpx.AsyncClient, sessions: SessionFactory, auth_headers: Callable[..., Any]
) -> None:
    parent, _ = await _family(sessions, "stays@family.example", state="active")
    admin = await auth_headers(Role.admin)
    own = await auth_headers(Role.parent, user_id=parent.user_id)
    assert (await api.post(f"/api/v1/parents/{parent.id}/erasure", headers=own)).status_code == 403
    assert (await api.get(f"/api/v1/parents/{parent.id}/erasure", headers=own)).status_code == 403
    assert (await api.post(f"/api/v1/parents/{uuid.uuid4()}/erasure", headers=admin)).status_code == 404
    assert (await api.get(f"/api/v1/parents/{parent.id}/erasure", headers=admin)).status_code == 404  # never asked
    async with sessions() as session:
        still = await session.get(Parent, parent.id)
    assert still is not None
    assert still.email == "stays@family.example"
