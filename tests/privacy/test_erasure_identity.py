"""Erasure removes the login account from the identity provider: Supabase's admin delete-user call (against
recorded GoTrue responses), and the built-in provider's anonymized users row."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from core.db import SessionFactory, transaction
from core.identity import AuthFailure, BuiltinIdentityProvider
from core.settings import Settings
from core.supabase_identity import SupabaseIdentityProvider
from models import OneTimeToken, RefreshToken, Role, TokenPurpose, User
from tests.auth.supabase_fake import SERVICE_ROLE_KEY, FakeSupabase, load, supabase_settings

SUPABASE_USER = load("admin_delete_user_ok")["response"]["body"]
USER_ID = uuid.UUID(SUPABASE_USER["id"])


async def supabase_user(sessions: SessionFactory) -> None:
    async with transaction(sessions) as session:
        session.add(User(id=USER_ID, email=SUPABASE_USER["email"], role=Role.parent, external_id=str(USER_ID)))


async def delete(provider: object, sessions: SessionFactory, user_id: uuid.UUID) -> bool:
    async with transaction(sessions) as session:
        user = await session.get(User, user_id)
        assert user is not None
        removed: bool = await provider.account_deleted(session, user)  # type: ignore[attr-defined]
    return removed


async def test_supabase_deletes_the_user_with_the_service_role_and_forgets_its_id(
    make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    fake = FakeSupabase()
    provider = SupabaseIdentityProvider(supabase_settings(make_settings), fake.client)
    await supabase_user(sessions)
    fake.will_answer("admin_delete_user_ok")
    assert await delete(provider, sessions, USER_ID) is True
    [request] = fake.received
    assert (request.method, request.url.path) == ("DELETE", f"/auth/v1/admin/users/{USER_ID}")
    assert request.headers["apikey"] == SERVICE_ROLE_KEY
    assert fake.body(0) == {"should_soft_delete": False}  # a hard delete: Supabase keeps nothing
    async with sessions() as session:
        mirror = await session.get(User, USER_ID)
    assert mirror is not None
    assert (mirror.external_id, mirror.is_active, mirror.email) == (None, False, f"erased-{USER_ID}@erased.invalid")
    # Again: the provider id is gone, so Supabase is not asked twice and nothing changes.
    assert await delete(provider, sessions, USER_ID) is False
    assert len(fake.received) == 1
    assert fake.unexpected == []


async def test_a_user_supabase_no_longer_knows_counts_as_deleted(
    make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    fake = FakeSupabase()
    provider = SupabaseIdentityProvider(supabase_settings(make_settings), fake.client)
    await supabase_user(sessions)
    fake.will_answer("admin_delete_user_not_found")
    assert await delete(provider, sessions, USER_ID) is True  # the local mirror was still there to anonymize
    async with sessions() as session:
        mirror = await session.get(User, USER_ID)
    assert mirror is not None
    assert mirror.external_id is None
    assert fake.unexpected == []


async def test_supabase_unreachable_leaves_the_account_for_the_retry(
    make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    fake = FakeSupabase()  # nothing queued: Supabase answers 599
    provider = SupabaseIdentityProvider(supabase_settings(make_settings), fake.client)
    await supabase_user(sessions)
    with pytest.raises(AuthFailure) as failed:
        await delete(provider, sessions, USER_ID)
    assert failed.value.code == "identity_unavailable"
    async with sessions() as session:
        mirror = await session.get(User, USER_ID)
    assert mirror is not None
    assert mirror.external_id == str(USER_ID)  # still known, so the erasure's retry deletes it


async def test_the_builtin_provider_anonymizes_the_row_and_drops_its_sessions_and_links(
    settings: Settings, sessions: SessionFactory
) -> None:
    async with transaction(sessions) as session:
        user = User(email="kim@family.example", role=Role.parent, password_hash="hash")
        session.add(user)
        await session.flush()
        expires = datetime.now(UTC) + timedelta(days=1)
        session.add_all(
            [
                RefreshToken(user_id=user.id, token_hash="r" * 64, family_id=uuid.uuid4(), expires_at=expires),
                OneTimeToken(
                    user_id=user.id, purpose=TokenPurpose.password_reset, token_hash="o" * 64, expires_at=expires
                ),
            ]
        )
    provider = BuiltinIdentityProvider(settings)
    assert await delete(provider, sessions, user.id) is True
    assert await delete(provider, sessions, user.id) is False
    async with sessions() as session:
        row = await session.get(User, user.id)
    assert row is not None
    assert (row.email, row.password_hash, row.is_active) == (f"erased-{user.id}@erased.invalid", None, False)
