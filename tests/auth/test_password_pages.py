"""The pages the emailed links open work without any front end: a form, then the password is set."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx

from core.db import SessionFactory, transaction
from core.identity import BuiltinIdentityProvider
from core.settings import Settings
from devstack.smtp_sink import SmtpSink
from models import Role, TokenPurpose
from tests.auth.conftest import AUTH
from tests.auth.test_passwords import token_from

NEW_PASSWORD = "a page-set password 42"


def csrf(page: httpx.Response) -> dict[str, str]:
    """The form's CSRF field (its cookie is in the client's jar since the GET)."""
    found = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page.text)
    assert found, page.text
    return {"csrf_token": found.group(1)}


async def test_a_new_parent_sets_a_password_from_the_welcome_link_page(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    provider = BuiltinIdentityProvider(settings)
    async with transaction(sessions) as session:
        account = await provider.ensure_account(session, "page.parent@cedar.test", Role.parent)
        link = await provider.create_password_link(session, account.user_id, TokenPurpose.set_password)
    path = link.removeprefix(settings.public_base_url)

    page = await api.get(path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    token = link.split("token=")[1]
    assert f'name="token" value="{token}"' in page.text and 'action="/set-password"' in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self';")
    assert "<script" not in page.text  # no script needed

    forged = await api.post("/set-password", data={"token": token, "password": NEW_PASSWORD})
    assert forged.status_code == 403  # a form without its CSRF token
    too_short = await api.post("/set-password", data={"token": token, "password": "short", **csrf(page)})
    assert too_short.status_code == 422 and "10 to 256 characters" in too_short.text
    saved = await api.post("/set-password", data={"token": token, "password": NEW_PASSWORD, **csrf(page)})
    assert saved.status_code == 200 and "Password saved" in saved.text
    again = await api.post("/set-password", data={"token": token, "password": NEW_PASSWORD, **csrf(page)})
    assert again.status_code == 400 and "no longer works" in again.text

    login = await api.post(f"{AUTH}/login", json={"email": "page.parent@cedar.test", "password": NEW_PASSWORD})
    assert login.status_code == 200


async def test_the_reset_link_page_sets_a_new_password(
    api: httpx.AsyncClient, make_person: Callable[..., Any], smtp_sink: SmtpSink
) -> None:
    teacher = await make_person(Role.teacher)
    await api.post(f"{AUTH}/password-reset", json={"email": teacher.email})
    [message] = await smtp_sink.wait_for_messages(teacher.email)
    token = token_from(message, "reset-password")
    page = await api.get("/reset-password", params={"token": token})
    assert page.status_code == 200 and 'action="/reset-password"' in page.text
    # A reset link does not open the set-password door.
    wrong_door = await api.post("/set-password", data={"token": token, "password": NEW_PASSWORD, **csrf(page)})
    assert wrong_door.status_code == 400
    saved = await api.post("/reset-password", data={"token": token, "password": NEW_PASSWORD, **csrf(page)})
    assert saved.status_code == 200, saved.text
    login = await api.post(f"{AUTH}/login", json={"email": teacher.email, "password": NEW_PASSWORD})
    assert login.status_code == 200


async def test_a_hostile_token_is_escaped_in_the_page(api: httpx.AsyncClient) -> None:
    page = await api.get("/set-password", params={"token": '"><script>alert(1)</script>xxxx'})
    assert page.status_code == 200 and "<script>" not in page.text and "&#34;&gt;&lt;script&gt;" in page.text
