"""GET/PATCH /auth/me: each caller sees and changes only their own profile, within their role's fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory
from models import AuditLog, Parent, Role, Teacher
from tests.auth.conftest import AUTH, Person


async def headers_of(api: httpx.AsyncClient, person: Person) -> dict[str, str]:
    response = await api.post(f"{AUTH}/login", json={"email": person.email, "password": person.password})
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def test_each_parent_reads_and_changes_only_their_own_profile(
    api: httpx.AsyncClient, make_person: Callable[..., Any], sessions: SessionFactory
) -> None:
    alice, bob = await make_person(Role.parent), await make_person(Role.parent)
    alice_headers, bob_headers = await headers_of(api, alice), await headers_of(api, bob)

    change = {"phone": "+1 604 555 0111", "first_name": "Al"}
    changed = await api.patch(f"{AUTH}/me", headers=alice_headers, json=change)
    assert changed.status_code == 200, changed.text
    assert changed.json()["phone"] == "+1 604 555 0111"
    assert changed.json()["first_name"] == "Al"

    bobs = (await api.get(f"{AUTH}/me", headers=bob_headers)).json()
    assert bobs["email"] == bob.email
    assert bobs["parent_id"] == str(bob.row_id)
    assert bobs["phone"] == "604-555-0100"
    async with sessions() as session:
        bob_row = await session.get(Parent, bob.row_id)
        assert bob_row is not None
        assert bob_row.first_name == "Pat"
        [audit] = (await session.scalars(select(AuditLog).where(col(AuditLog.entity_id) == str(alice.row_id)))).all()
    assert audit.actor_user_id == alice.user_id
    assert audit.action == "update"
    assert audit.entity_type == "parents"
    assert audit.before == {"phone": "604-555-0100", "first_name": "Pat"}
    assert audit.after == {"phone": "+1 604 555 0111", "first_name": "Al"}


async def test_a_teacher_changes_their_bio_but_fields_of_other_roles_are_refused(
    api: httpx.AsyncClient, make_person: Callable[..., Any], sessions: SessionFactory
) -> None:
    teacher = await make_person(Role.teacher)
    headers = await headers_of(api, teacher)
    refused = await api.patch(f"{AUTH}/me", headers=headers, json={"phone": "604-555-0123"})
    assert refused.status_code == 422
    assert set(refused.json()["fields"]) == {"phone"}
    changed = await api.patch(f"{AUTH}/me", headers=headers, json={"bio": "Jazz piano since 1999."})
    assert changed.status_code == 200
    assert changed.json()["teacher_id"] == str(teacher.row_id)
    async with sessions() as session:
        row = await session.get(Teacher, teacher.row_id)
    assert row is not None
    assert row.bio == "Jazz piano since 1999."


async def test_unknown_and_oversized_fields_are_refused(
    api: httpx.AsyncClient, make_person: Callable[..., Any]
) -> None:
    parent = await make_person(Role.parent)
    headers = await headers_of(api, parent)
    unknown = await api.patch(f"{AUTH}/me", headers=headers, json={"role": "admin"})
    assert unknown.status_code == 422
    assert "role" in unknown.json()["fields"]
    too_long = await api.patch(f"{AUTH}/me", headers=headers, json={"last_name": "x" * 101})
    assert too_long.status_code == 422
    assert "last_name" in too_long.json()["fields"]
    assert (await api.get(f"{AUTH}/me", headers=headers)).json()["role"] == "parent"


async def test_a_required_field_cannot_be_nulled(api: httpx.AsyncClient, make_person: Callable[..., Any]) -> None:
    parent = await make_person(Role.parent)
    response = await api.patch(f"{AUTH}/me", headers=await headers_of(api, parent), json={"first_name": None})
    assert response.status_code == 422
    assert "first_name" in response.json()["fields"]
