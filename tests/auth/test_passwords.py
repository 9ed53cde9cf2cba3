"""Password reset end to end through the SMTP sink, and set-password for parents created by enrollment."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select

from core.db import SessionFactory, transaction
from core.identity import BuiltinIdentityProvider
from core.settings import Settings
from devstack.smtp_sink import SmtpSink
from models import Communication, Role, TokenPurpose
from tests.auth.conftest import AUTH, Person

NEW_PASSWORD = "a brand new password 42"


def token_from(message: dict[str, Any], path: str) -> str:
    found = re.search(rf"/{path}\?token=([A-Za-z0-9_-]+)", message["text"])
    assert found, message["text"]
    return found.group(1)


async def sign_in(api: httpx.AsyncClient, person: Person, password: str) -> httpx.Response:
    return await api.post(f"{AUTH}/login", json={"email": person.email, "password": password})


async def test_password_reset_end_to_end_through_the_mail(
    api: httpx.AsyncClient,
    make_person: Callable[..., Any],
    smtp_sink: SmtpSink,
    sessions: SessionFactory,
    settings: Settings,
) -> None:
    parent = await make_person(Role.parent)
    old_session = (await sign_in(api, parent, parent.password)).json()

    asked = await api.post(f"{AUTH}/password-reset", json={"email": parent.email})
    assert asked.status_code == 202, asked.text
    [message] = await smtp_sink.wait_for_messages(parent.email)
    assert message["subject"] == "Reset your Cedar Heights password"
    token = token_from(message, "reset-password")
    assert f"{settings.public_base_url}/reset-password?token=" in message["text"]

    confirmed = await api.post(f"{AUTH}/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert confirmed.status_code == 204, confirmed.text
    assert (await sign_in(api, parent, parent.password)).status_code == 401
    assert (await sign_in(api, parent, NEW_PASSWORD)).status_code == 200
    # Every earlier session ended with the reset; the link works once.
    stale = await api.post(f"{AUTH}/refresh", json={"refresh_token": old_session["refresh_token"]})
    assert stale.status_code == 401
    again = await api.post(f"{AUTH}/password-reset/confirm", json={"token": token, "password": "yet another one!!"})
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_link"

    async with sessions() as session:
        [sent] = (await session.scalars(select(Communication).where(Communication.recipient == parent.email))).all()
    assert sent.template == "password_reset"
    assert sent.status == "sent"
    assert sent.message_id
    assert sent.dedup_key.startswith(f"password-reset:{parent.user_id}:")


async def test_reset_answers_the_same_for_an_unknown_email_and_sends_nothing(
    api: httpx.AsyncClient, make_person: Callable[..., Any], smtp_sink: SmtpSink
) -> None:
    parent = await make_person(Role.parent)
    known = await api.post(f"{AUTH}/password-reset", json={"email": parent.email})
    unknown_email = f"nobody-{parent.user_id.hex[:8]}@cedar.test"
    unknown = await api.post(f"{AUTH}/password-reset", json={"email": unknown_email})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    await smtp_sink.wait_for_messages(parent.email)
    assert smtp_sink.messages(to=unknown_email) == []


async def test_only_the_newest_reset_link_works(
    api: httpx.AsyncClient, make_person: Callable[..., Any], smtp_sink: SmtpSink
) -> None:
    parent = await make_person(Role.parent)
    for _ in range(2):
        assert (await api.post(f"{AUTH}/password-reset", json={"email": parent.email})).status_code == 202
    newest, older = await smtp_sink.wait_for_messages(parent.email, count=2)  # newest first
    stale = await api.post(
        f"{AUTH}/password-reset/confirm", json={"token": token_from(older, "reset-password"), "password": NEW_PASSWORD}
    )
    assert stale.status_code == 400
    fresh = await api.post(
        f"{AUTH}/password-reset/confirm", json={"token": token_from(newest, "reset-password"), "password": NEW_PASSWORD}
    )
    assert fresh.status_code == 204


async def test_an_expired_link_is_refused(
    api: httpx.AsyncClient,
    make_person: Callable[..., Any],
    sessions: SessionFactory,
    make_settings: Callable[..., Settings],
) -> None:
    from datetime import timedelta

    parent = await make_person(Role.parent, password=None)
    expired_provider = BuiltinIdentityProvider(make_settings(set_password_ttl=timedelta(seconds=-1)))
    async with transaction(sessions) as session:
        link = await expired_provider.create_password_link(session, parent.user_id, TokenPurpose.set_password)
    response = await api.post(f"{AUTH}/set-password", json={"token": link.split("token=")[1], "password": NEW_PASSWORD})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_link"


async def test_a_parent_created_by_enrollment_sets_a_first_password(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings
) -> None:
    provider = BuiltinIdentityProvider(settings)
    async with transaction(sessions) as session:  # what the enrollment workflow's activity does
        account = await provider.ensure_account(session, "New.Parent@Cedar.test", Role.parent)
        link = await provider.create_password_link(session, account.user_id, TokenPurpose.set_password)
    assert link.startswith(f"{settings.public_base_url}/set-password?token=")
    token = link.split("token=")[1]

    too_short = await api.post(f"{AUTH}/set-password", json={"token": token, "password": "short"})
    assert too_short.status_code == 422
    assert "password" in too_short.json()["fields"]
    # A set-password link is not a reset link, and the other way round.
    wrong_door = await api.post(f"{AUTH}/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert wrong_door.status_code == 400
    response = await api.post(f"{AUTH}/set-password", json={"token": token, "password": NEW_PASSWORD})
    assert response.status_code == 204, response.text
    signed_in = await api.post(f"{AUTH}/login", json={"email": "new.parent@cedar.test", "password": NEW_PASSWORD})
    assert signed_in.status_code == 200
    assert signed_in.json()["user"]["role"] == "parent"
