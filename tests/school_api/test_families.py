"""Students and parents: each family sees only itself, staff reads are audited, writes are audited."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory, transaction
from models import AuditLog, Enrollment, Role
from tests.school_api.conftest import API


async def _audit(sessions: SessionFactory, entity_type: str, action: str) -> list[AuditLog]:
    async with sessions() as session:
        query = select(AuditLog).where(col(AuditLog.entity_type) == entity_type, col(AuditLog.action) == action)
        return list((await session.scalars(query)).all())


async def test_a_parent_sees_only_their_own_children(api: httpx.AsyncClient, make_family: Callable[..., Any]) -> None:
    ours, theirs = await make_family(children=2), await make_family()
    listed = await api.get(f"{API}/students", headers=ours.headers)
    assert listed.status_code == 200, listed.text
    assert {row["id"] for row in listed.json()["data"]} == {str(s.id) for s in ours.students}
    assert listed.json()["total"] == 2

    other_child = await api.get(f"{API}/students/{theirs.students[0].id}", headers=ours.headers)
    assert other_child.status_code == 404
    assert other_child.json()["error"] == "not_found"
    other_parent = await api.get(f"{API}/parents/{theirs.parent.id}", headers=ours.headers)
    assert other_parent.status_code == 404
    rename = await api.patch(
        f"{API}/students/{theirs.students[0].id}", json={"first_name": "Mallory"}, headers=ours.headers
    )
    assert rename.status_code == 404


async def test_a_parent_edits_names_but_not_the_schools_fields(
    api: httpx.AsyncClient, make_family: Callable[..., Any], sessions: SessionFactory
) -> None:
    family = await make_family()
    child = family.students[0]
    renamed = await api.patch(
        f"{API}/students/{child.id}",
        json={"first_name": "Robin"},
        headers={**family.headers, "X-Request-ID": "rename-robin-1"},
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["first_name"] == "Robin"
    (row,) = await _audit(sessions, "student", "update")
    assert row.before is not None
    assert row.after is not None
    assert (row.before["first_name"], row.after["first_name"]) == ("Kid0", "Robin")
    assert (row.actor_role, row.actor_user_id, row.request_id) == ("parent", family.parent.user_id, "rename-robin-1")

    deactivate = await api.patch(f"{API}/students/{child.id}", json={"is_active": False}, headers=family.headers)
    assert deactivate.status_code == 403
    assert "is_active" in deactivate.json()["fields"]


async def test_unknown_fields_and_long_strings_are_rejected(
    api: httpx.AsyncClient, make_family: Callable[..., Any], auth_headers: Callable[..., Any]
) -> None:
    family = await make_family()
    admin = await auth_headers(Role.admin)
    body = {"parent_id": str(family.parent.id), "first_name": "Al", "last_name": "X", "date_of_birth": "2015-01-01"}
    extra = await api.post(f"{API}/students", json={**body, "is_admin": True}, headers=admin)
    assert extra.status_code == 422
    assert "is_admin" in extra.json()["fields"]
    too_long = await api.post(f"{API}/students", json={**body, "first_name": "A" * 101}, headers=admin)
    assert too_long.status_code == 422
    assert "first_name" in too_long.json()["fields"]
    too_old = await api.post(f"{API}/students", json={**body, "date_of_birth": "1990-01-01"}, headers=admin)
    assert too_old.status_code == 422
    assert "date_of_birth" in too_old.json()["fields"]
    created = await api.post(f"{API}/students", json=body, headers=admin)
    assert created.status_code == 201, created.text
    assert created.json()["parent_id"] == str(family.parent.id)


async def test_staff_reads_of_family_data_are_audited(
    api: httpx.AsyncClient, make_family: Callable[..., Any], auth_headers: Callable[..., Any], sessions: SessionFactory
) -> None:
    family = await make_family(children=2)
    admin = await auth_headers(Role.admin)
    assert (await api.get(f"{API}/students", headers=admin)).status_code == 200
    assert (await api.get(f"{API}/parents/{family.parent.id}", headers=admin)).status_code == 200
    student_reads = {row.entity_id for row in await _audit(sessions, "student", "read")}
    assert student_reads == {str(s.id) for s in family.students}
    (parent_read,) = await _audit(sessions, "parent", "read")
    assert parent_read.entity_id == str(family.parent.id)
    assert parent_read.actor_role == "admin"
    # A parent reading their own family is not a staff read.
    assert (await api.get(f"{API}/students", headers=family.headers)).status_code == 200
    assert len(await _audit(sessions, "student", "read")) == 2


async def test_a_teacher_sees_the_students_assigned_to_them_by_an_enrollment(
    api: httpx.AsyncClient,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    sessions: SessionFactory,
) -> None:
    family, assigned, other = await make_family(children=2), await make_teacher(), await make_teacher()
    child = family.students[0]
    async with transaction(sessions) as session:
        session.add(
            Enrollment(
                request_hash="0" * 64,
                workflow_id=f"enrollment-{child.id}",
                state="teacher_assigned",
                parent_id=family.parent.id,
                student_id=child.id,
                teacher_id=assigned.teacher.id,
                instrument="piano",
                lesson_minutes=30,
                billing_interval="month",
                stripe_payment_method_id="pm_card_visa",
            )
        )
    seen = await api.get(f"{API}/students", headers=assigned.headers)
    assert [row["id"] for row in seen.json()["data"]] == [str(child.id)]
    assert (await api.get(f"{API}/students/{family.students[1].id}", headers=assigned.headers)).status_code == 404
    assert (await api.get(f"{API}/students", headers=other.headers)).json()["total"] == 0
