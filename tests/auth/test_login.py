"""Login, token shape and expiry, refresh rotation with reuse detection, logout."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import jwt

from core.settings import Settings
from core.tokens import issue_access_token
from models import Role
from tests.auth.conftest import AUTH, Person


async def login(api: httpx.AsyncClient, person: Person, password: str | None = None) -> httpx.Response:
    return await api.post(f"{AUTH}/login", json={"email": person.email, "password": password or person.password})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_login_issues_supabase_shaped_tokens_that_open_the_api(
    api: httpx.AsyncClient, make_person: Callable[..., Any], settings: Settings
) -> None:
    parent = await make_person(Role.parent)
    response = await api.post(f"{AUTH}/login", json={"email": parent.email.upper(), "password": parent.password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 15 * 60
    assert body["user"] == {"id": str(parent.user_id), "email": parent.email, "role": "parent"}
    claims = jwt.decode(body["access_token"], settings.jwt_secret, algorithms=["HS256"], audience="authenticated")
    assert claims["sub"] == str(parent.user_id)
    assert claims["role"] == "authenticated"
    assert claims["app_metadata"]["role"] == "parent"
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert response.headers["cache-control"] == "no-store"

    me = await api.get(f"{AUTH}/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["parent_id"] == str(parent.row_id)


async def test_wrong_password_and_unknown_email_get_the_same_answer(
    api: httpx.AsyncClient, make_person: Callable[..., Any]
) -> None:
    parent = await make_person(Role.parent)
    wrong = await login(api, parent, "not the password")
    unknown = await api.post(f"{AUTH}/login", json={"email": "nobody@cedar.test", "password": "whatever"})
    assert wrong.status_code == unknown.status_code == 401
    assert (
        wrong.json()
        == unknown.json()
        == {"error": "invalid_credentials", "detail": "the email or password is wrong", "fields": {}}
    )


async def test_a_parent_without_a_password_yet_cannot_log_in(
    api: httpx.AsyncClient, make_person: Callable[..., Any]
) -> None:
    parent = await make_person(Role.parent, password=None)
    assert (await login(api, parent, "")).status_code == 422  # an empty password is refused before any lookup
    assert (await login(api, parent, "anything at all")).status_code == 401


async def test_an_expired_access_token_is_refused(
    api: httpx.AsyncClient, make_person: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    admin = await make_person(Role.admin)
    expired = issue_access_token(
        make_settings(access_token_ttl=timedelta(seconds=-5)), admin.user_id, admin.email, "admin"
    )
    response = await api.get(f"{AUTH}/me", headers=bearer(expired))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["error"] == "unauthorized"


async def test_a_forged_token_is_refused(api: httpx.AsyncClient, make_person: Callable[..., Any]) -> None:
    admin = await make_person(Role.admin)
    forged = issue_access_token(
        Settings(jwt_secret="an attacker's secret of sufficient length!!"), admin.user_id, admin.email, "admin"
    )
    assert (await api.get(f"{AUTH}/me", headers=bearer(forged))).status_code == 401


async def test_refresh_rotates_and_reusing_an_old_token_revokes_the_family(
    client_for: Callable[..., Any], make_person: Callable[..., Any]
) -> None:
    api = await client_for(refresh_token_reuse_grace=timedelta(0))
    teacher = await make_person(Role.teacher)
    first = (await login(api, teacher)).json()
    second = await api.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    second_body = second.json()
    assert second_body["refresh_token"] != first["refresh_token"]
    assert (await api.get(f"{AUTH}/me", headers=bearer(second_body["access_token"]))).status_code == 200

    replay = await api.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_refresh_token"
    # The family is revoked: the legitimate successor and the session's access tokens stop working too.
    successor = await api.post(f"{AUTH}/refresh", json={"refresh_token": second_body["refresh_token"]})
    assert successor.status_code == 401
    assert (await api.get(f"{AUTH}/me", headers=bearer(second_body["access_token"]))).status_code == 401
    # Another session of the same person is untouched.
    other = (await login(api, teacher)).json()
    assert (await api.post(f"{AUTH}/refresh", json={"refresh_token": other["refresh_token"]})).status_code == 200


async def test_a_retried_refresh_within_the_grace_keeps_the_session(
    api: httpx.AsyncClient, make_person: Callable[..., Any]
) -> None:
    parent = await make_person(Role.parent)
    first = (await login(api, parent)).json()
    answered = await api.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})
    retried = await api.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})  # answer lost
    assert answered.status_code == retried.status_code == 200
    tokens = {answered.json()["refresh_token"], retried.json()["refresh_token"]}
    assert len(tokens) == 2
    for token in tokens:  # both siblings go on working
        assert (await api.post(f"{AUTH}/refresh", json={"refresh_token": token})).status_code == 200


async def test_a_logged_out_session_cannot_be_revived_within_the_grace(
    api: httpx.AsyncClient, make_person: Callable[..., Any]
) -> None:
    parent = await make_person(Role.parent)
    first = (await login(api, parent)).json()
    second = (await api.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})).json()
    await api.post(f"{AUTH}/logout", headers=bearer(second["access_token"]))
    assert (await api.post(f"{AUTH}/refresh", json={"refresh_token": first["refresh_token"]})).status_code == 401


async def test_logout_ends_the_session_and_only_that_session(
    api: httpx.AsyncClient, make_person: Callable[..., Any]
) -> None:
    parent = await make_person(Role.parent)
    phone, laptop = (await login(api, parent)).json(), (await login(api, parent)).json()
    out = await api.post(
        f"{AUTH}/logout", headers=bearer(phone["access_token"]), json={"refresh_token": phone["refresh_token"]}
    )
    assert out.status_code == 204, out.text
    assert (await api.post(f"{AUTH}/refresh", json={"refresh_token": phone["refresh_token"]})).status_code == 401
    assert (await api.get(f"{AUTH}/me", headers=bearer(phone["access_token"]))).status_code == 401
    assert (await api.get(f"{AUTH}/me", headers=bearer(laptop["access_token"]))).status_code == 200
    assert (await api.post(f"{AUTH}/refresh", json={"refresh_token": laptop["refresh_token"]})).status_code == 200


async def test_logout_with_someone_elses_refresh_token_does_not_touch_their_session(
    api: httpx.AsyncClient, make_person: Callable[..., Any]
) -> None:
    mallory, victim = await make_person(Role.parent), await make_person(Role.parent)
    mallory_session, victim_session = (await login(api, mallory)).json(), (await login(api, victim)).json()
    out = await api.post(
        f"{AUTH}/logout",
        headers=bearer(mallory_session["access_token"]),
        json={"refresh_token": victim_session["refresh_token"]},
    )
    assert out.status_code == 204
    assert (await api.get(f"{AUTH}/me", headers=bearer(victim_session["access_token"]))).status_code == 200
    refreshed = await api.post(f"{AUTH}/refresh", json={"refresh_token": victim_session["refresh_token"]})
    assert refreshed.status_code == 200


async def test_logout_needs_a_signed_in_caller(api: httpx.AsyncClient) -> None:
    response = await api.post(f"{AUTH}/logout")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
