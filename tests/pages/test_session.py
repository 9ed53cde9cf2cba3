"""Sign-in for people over plain HTTP: the same identity rules as the API's login, a cookie that ends with the
account, renewal of an expired access token, and no redirect to another site."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import jwt
from sqlalchemy import update

from core.db import SessionFactory, transaction
from core.settings import Settings
from core.tokens import issue_access_token
from models import Role, User

TOKEN = re.compile(r'name="csrf_token" value="([0-9a-f]+)"')


async def _sign_in(client: httpx.AsyncClient, email: str, password: str, next_path: str = "") -> httpx.Response:
    form = await client.get("/sign-in")
    found = TOKEN.search(form.text)
    assert found, form.text
    data = {"csrf_token": found.group(1), "email": email, "password": password, "next": next_path}
    return await client.post("/sign-in", data=data)


async def test_sign_in_sets_a_protected_cookie_and_refuses_foreign_next(
    api: httpx.AsyncClient, make_person: Callable[..., Any]
) -> None:
    parent = await make_person(Role.parent)
    page = await api.get("/family")
    assert page.status_code == 303
    assert page.headers["location"] == "/sign-in?next=/family"
    assert page.headers["content-security-policy"].startswith("default-src 'none'")

    wrong = await _sign_in(api, parent.email, "not the password")
    assert wrong.status_code == 401
    assert "The email or password is not right." in wrong.text
    assert parent.email in wrong.text  # the form keeps the address

    signed = await _sign_in(api, parent.email, parent.password, "//evil.example/steal")
    assert signed.status_code == 303
    assert signed.headers["location"] == "/family"
    session_cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("cedar_session="))
    assert "HttpOnly" in session_cookie
    assert "SameSite=Lax" in session_cookie
    assert "Secure" not in session_cookie  # test environment: plain HTTP
    home = await api.get("/family")
    assert home.status_code == 200
    assert "Your family" in home.text
    assert 'href="/static/cedar.css"' in home.text
    assert '<a class="skip-link" href="#main">' in home.text
    assert '<main id="main"' in home.text
    # The JSON API keeps its strict policy beside the pages.
    assert (await api.get("/health")).headers["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"

    # Signed in already, the sign-in link goes straight on.
    assert (await api.get("/sign-in", params={"next": "/family/privacy"})).headers["location"] == "/family/privacy"


async def test_a_teacher_is_refused_the_family_pages(api: httpx.AsyncClient, make_person: Callable[..., Any]) -> None:
    teacher = await make_person(Role.teacher)
    signed = await _sign_in(api, teacher.email, teacher.password)
    assert signed.status_code == 303
    assert signed.headers["location"] == "/teacher"  # a teacher lands on their own pages
    refused = await api.get("/family")
    assert refused.status_code == 403
    assert "not for the account" in refused.text


async def test_deactivating_the_account_ends_its_cookie_session(
    api: httpx.AsyncClient, make_person: Callable[..., Any], sessions: SessionFactory
) -> None:
    parent = await make_person(Role.parent)
    await _sign_in(api, parent.email, parent.password)
    assert (await api.get("/family")).status_code == 200
    async with transaction(sessions) as session:
        await session.execute(update(User).where(User.id == parent.user_id).values(is_active=False))
    ended = await api.get("/family")
    assert ended.status_code == 303
    assert ended.headers["location"].startswith("/sign-in")


async def test_an_expired_access_token_is_renewed_with_the_refresh_token(
    api: httpx.AsyncClient, make_person: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    parent = await make_person(Role.parent)
    await _sign_in(api, parent.email, parent.password)
    access, refresh = api.cookies["cedar_session"].split(":")
    claims = jwt.decode(access, options={"verify_signature": False})
    # The same session's access token, as it is 15 minutes later: expired.
    expired = issue_access_token(
        make_settings(access_token_ttl=timedelta(seconds=-5)),
        parent.user_id,
        parent.email,
        "parent",
        uuid.UUID(claims["session_id"]),
    )
    api.cookies.delete("cedar_session")
    api.cookies.set("cedar_session", f"{expired}:{refresh}", domain="cedar.test")
    home = await api.get("/family")
    assert home.status_code == 200
    renewed_access, renewed_refresh = api.cookies["cedar_session"].split(":")
    assert renewed_access != expired
    assert renewed_refresh != refresh
    assert (await api.get("/family")).status_code == 200


async def test_consents_and_the_data_export_from_the_privacy_page(
    api: httpx.AsyncClient, make_person: Callable[..., Any]
) -> None:
    parent = await make_person(Role.parent)
    await _sign_in(api, parent.email, parent.password)
    page = await api.get("/family/privacy")
    assert page.status_code == 200
    assert page.text.count("Give consent") == 2
    token = TOKEN.search(page.text)
    assert token
    given = await api.post(
        "/family/consents", data={"csrf_token": token.group(1), "kind": "marketing_email", "granted": "true"}
    )
    assert given.status_code == 303
    assert given.headers["location"] == "/family/privacy?notice=consent_saved"
    after = await api.get(given.headers["location"])
    assert "Your choice is saved." in after.text
    assert after.text.count("Withdraw") == 1
    export = await api.get("/family/privacy/export")
    assert export.status_code == 200
    assert export.headers["content-disposition"].startswith("attachment;")
    assert parent.email in export.text
    assert "marketing_email" in export.text


async def test_an_unknown_enrollment_status_page_is_a_page_not_json(api: httpx.AsyncClient) -> None:
    missing = await api.get(f"/enrollments/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert "Enrollment not found." in missing.text
