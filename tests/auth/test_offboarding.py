"""Off-boarding: a removed or deactivated teacher or parent loses sign-in, refresh and the tokens already issued;
the last admin stays; an email change moves the login with it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from api.errors import Conflict
from api.repositories.accounts import deactivate_account
from core.db import SessionFactory, transaction
from core.identity import BuiltinIdentityProvider
from core.settings import Settings
from models import Role, User
from tests.auth.conftest import AUTH, Person
from tests.waiting import eventually

API = "/api/v1"


async def signed_in(api: httpx.AsyncClient, person: Person) -> dict[str, Any]:
    response = await api.post(f"{AUTH}/login", json={"email": person.email, "password": person.password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def assert_locked_out(api: httpx.AsyncClient, person: Person, tokens: dict[str, Any]) -> None:
    login = await api.post(f"{AUTH}/login", json={"email": person.email, "password": person.password})
    assert login.status_code == 401, login.text
    me = await api.get(f"{AUTH}/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 401, me.text
    refresh = await api.post(f"{AUTH}/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401, refresh.text


Removal = Callable[[httpx.AsyncClient, dict[str, str], Person], Awaitable[httpx.Response]]


async def delete_teacher(api: httpx.AsyncClient, admin: dict[str, str], person: Person) -> httpx.Response:
    return await api.delete(f"{API}/teachers/{person.row_id}", headers=admin)


async def deactivate_teacher(api: httpx.AsyncClient, admin: dict[str, str], person: Person) -> httpx.Response:
    return await api.patch(f"{API}/teachers/{person.row_id}", headers=admin, json={"is_active": False})


async def delete_parent(api: httpx.AsyncClient, admin: dict[str, str], person: Person) -> httpx.Response:
    return await api.delete(f"{API}/parents/{person.row_id}", headers=admin)


async def erase_parent(api: httpx.AsyncClient, admin: dict[str, str], person: Person) -> httpx.Response:
    """The erasure runs as a workflow: its report says when the login is gone."""
    started = await api.post(f"{API}/parents/{person.row_id}/erasure", headers=admin)

    async def report() -> httpx.Response | None:
        response = await api.get(f"{API}/parents/{person.row_id}/erasure", headers=admin)
        return response if response.json().get("status") == "completed" else None

    return await eventually(report, timeout=20, what="the erasure report") if started.status_code == 202 else started


@pytest.mark.parametrize(
    ("role", "remove"),
    [
        (Role.teacher, delete_teacher),
        (Role.teacher, deactivate_teacher),
        (Role.parent, delete_parent),
        (Role.parent, erase_parent),
    ],
)
async def test_a_removed_person_loses_sign_in_refresh_and_the_tokens_they_hold(
    api: httpx.AsyncClient,
    make_person: Callable[..., Any],
    auth_headers: Callable[..., Any],
    sessions: SessionFactory,
    run_worker: Callable[..., AbstractAsyncContextManager[Any]],
    role: Role,
    remove: Removal,
) -> None:
    person = await make_person(role)
    tokens = await signed_in(api, person)
    assert (await api.get(f"{AUTH}/me", headers=bearer(tokens["access_token"]))).status_code == 200

    async with run_worker():  # a parent's erasure runs as a workflow
        removed = await remove(api, await auth_headers(Role.admin), person)
    assert removed.status_code in (200, 204), removed.text

    await assert_locked_out(api, person, tokens)
    async with sessions() as session:
        user = await session.get(User, person.user_id)
    assert user is not None
    assert not user.is_active  # kept, not deleted: audit rows still name it


async def test_a_reactivated_teacher_signs_in_again_but_old_sessions_stay_ended(
    api: httpx.AsyncClient, make_person: Callable[..., Any], auth_headers: Callable[..., Any]
) -> None:
    teacher = await make_person(Role.teacher)
    tokens = await signed_in(api, teacher)
    admin = await auth_headers(Role.admin)
    await deactivate_teacher(api, admin, teacher)
    back = await api.patch(f"{API}/teachers/{teacher.row_id}", headers=admin, json={"is_active": True})
    assert back.status_code == 200, back.text

    assert (await api.get(f"{AUTH}/me", headers=bearer((await signed_in(api, teacher))["access_token"]))).is_success
    refresh = await api.post(f"{AUTH}/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401, refresh.text


async def test_a_teacher_removed_then_added_again_gets_their_login_back(
    api: httpx.AsyncClient, make_person: Callable[..., Any], auth_headers: Callable[..., Any]
) -> None:
    teacher = await make_person(Role.teacher, domain="example.com")
    admin = await auth_headers(Role.admin)
    assert (await delete_teacher(api, admin, teacher)).status_code == 204
    again = await api.post(
        f"{API}/teachers",
        headers=admin,
        json={
            "first_name": "Tia",
            "last_name": "Again",
            "display_name": "Tia Again",
            "email": teacher.email,
            "instruments": ["piano"],
        },
    )
    assert again.status_code == 201, again.text
    assert again.json()["user_id"] == str(teacher.user_id)
    await signed_in(api, teacher)


async def test_the_last_active_admin_cannot_be_deactivated(sessions: SessionFactory, settings: Settings) -> None:
    identity = BuiltinIdentityProvider(settings)
    async with transaction(sessions) as session:
        first, second = (
            User(email="first-admin@cedar.test", role=Role.admin),
            User(email="second-admin@cedar.test", role=Role.admin),
        )
        gone = User(email="gone-admin@cedar.test", role=Role.admin, is_active=False)
        session.add_all([first, second, gone])

    async with transaction(sessions) as session:
        await deactivate_account(session, identity, first.id)
    with pytest.raises(Conflict, match="last active admin"):
        async with transaction(sessions) as session:
            await deactivate_account(session, identity, second.id)

    async with sessions() as session:
        still = await session.get(User, second.id)
    assert still is not None
    assert still.is_active


@pytest.mark.parametrize("role", [Role.teacher, Role.parent])
async def test_an_email_change_moves_the_login_with_it(
    api: httpx.AsyncClient,
    make_person: Callable[..., Any],
    auth_headers: Callable[..., Any],
    role: Role,
) -> None:
    person = await make_person(role, domain="example.com")
    other = await make_person(Role.parent, domain="example.com")
    admin = await auth_headers(Role.admin)
    path = f"{API}/{role}s/{person.row_id}"

    taken = await api.patch(path, headers=admin, json={"email": other.email.upper()})
    assert taken.status_code == 409, taken.text
    assert taken.json()["fields"] == {"email": "already in use"}

    moved = await api.patch(path, headers=admin, json={"email": f"New.{person.email}"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["email"] == f"new.{person.email}"
    old_address = await api.post(f"{AUTH}/login", json={"email": person.email, "password": person.password})
    assert old_address.status_code == 401
    new_address = Person(person.user_id, f"new.{person.email}", person.password, person.row_id)
    assert (await signed_in(api, new_address))["user"]["email"] == new_address.email


async def test_a_parent_cannot_change_their_own_login_email(
    api: httpx.AsyncClient, make_person: Callable[..., Any]
) -> None:
    parent = await make_person(Role.parent)
    tokens = await signed_in(api, parent)
    refused = await api.patch(
        f"{API}/parents/{parent.row_id}", headers=bearer(tokens["access_token"]), json={"email": "mine@example.com"}
    )
    assert refused.status_code == 403, refused.text
