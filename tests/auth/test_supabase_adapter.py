"""The Supabase adapter, through the real ``supabase`` client, against recorded Supabase Auth responses."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from sqlalchemy import select

from api.main import create_app
from core.db import SessionFactory, transaction
from core.identity import AuthFailure, SignedIn
from core.settings import Settings
from core.supabase_identity import SupabaseIdentityProvider
from core.tokens import issue_access_token
from devstack.smtp_sink import SmtpSink
from models import Parent, Role, TokenPurpose, User
from tests.auth.conftest import AUTH
from tests.auth.supabase_fake import (
    ANON_KEY,
    PROJECT_JWT_SECRET,
    SERVICE_ROLE_KEY,
    FakeSupabase,
    load,
    supabase_settings,
)

SUPABASE_USER = load("token_password_ok")["response"]["body"]["user"]
USER_ID = uuid.UUID(SUPABASE_USER["id"])
EMAIL = SUPABASE_USER["email"]


@pytest.fixture
def fake() -> FakeSupabase:
    return FakeSupabase()


@pytest.fixture
def provider(fake: FakeSupabase, make_settings: Callable[..., Settings]) -> SupabaseIdentityProvider:
    return SupabaseIdentityProvider(supabase_settings(make_settings), fake.client)


async def mirrored_user(sessions: SessionFactory) -> None:
    async with transaction(sessions) as session:
        session.add(User(id=USER_ID, email=EMAIL, role=Role.parent, external_id=str(USER_ID)))


async def test_sign_in_returns_supabase_session_and_mirrors_the_account(
    fake: FakeSupabase, provider: SupabaseIdentityProvider, sessions: SessionFactory
) -> None:
    fake.will_answer("token_password_ok")
    async with transaction(sessions) as session:
        signed = await provider.sign_in(session, EMAIL.upper(), "the parent's password")
    recorded = load("token_password_ok")["response"]["body"]
    assert signed == SignedIn(recorded["access_token"], recorded["refresh_token"], 3600, USER_ID, EMAIL, "parent")
    [request] = fake.received
    assert request.headers["apikey"] == ANON_KEY  # user calls use the public key, never the service role
    assert fake.body(0)["email"] == EMAIL
    assert fake.body(0)["password"] == "the parent's password"
    async with sessions() as session:
        mirror = await session.get(User, USER_ID)
    assert mirror is not None
    assert mirror.external_id == str(USER_ID)
    assert mirror.role == "parent"
    assert fake.unexpected == []


async def test_refused_credentials_count_towards_the_lockout(
    fake: FakeSupabase, provider: SupabaseIdentityProvider, sessions: SessionFactory
) -> None:
    await mirrored_user(sessions)
    fake.will_answer("token_password_invalid_credentials")
    async with transaction(sessions) as session:  # commits, as the API's transaction does with a refusal
        with pytest.raises(AuthFailure) as refused:
            await provider.sign_in(session, EMAIL, "wrong")
    assert refused.value.code == "invalid_credentials"
    async with sessions() as session:
        mirror = await session.get(User, USER_ID)
    assert mirror is not None
    assert mirror.failed_logins == 1


async def test_refresh_and_a_reused_refresh_token(
    fake: FakeSupabase, provider: SupabaseIdentityProvider, sessions: SessionFactory
) -> None:
    await mirrored_user(sessions)
    fake.will_answer("token_refresh_ok", "token_refresh_already_used")
    async with transaction(sessions) as session:
        signed = await provider.refresh(session, "yq2nr6ka7v5w")
        assert signed.refresh_token == "m4k7hq2xwz3e"
        assert signed.user_id == USER_ID
        with pytest.raises(AuthFailure) as reused:
            await provider.refresh(session, "yq2nr6ka7v5w")
    assert reused.value.code == "invalid_refresh_token"
    assert [dict(r.url.params)["grant_type"] for r in fake.received] == ["refresh_token", "refresh_token"]
    assert fake.body(0) == {"refresh_token": "yq2nr6ka7v5w"}


async def test_sign_out_ends_the_supabase_session_and_tolerates_one_already_gone(
    fake: FakeSupabase, provider: SupabaseIdentityProvider, sessions: SessionFactory
) -> None:
    fake.will_answer("logout_ok", "logout_session_not_found")
    async with transaction(sessions) as session:
        for _ in range(2):
            await provider.sign_out(session, USER_ID, "the-users-access-token", None, None)
    assert [r.headers["authorization"] for r in fake.received] == ["Bearer the-users-access-token"] * 2
    assert fake.unexpected == []


async def test_ensure_account_creates_the_supabase_user_with_the_cedar_role(
    fake: FakeSupabase, provider: SupabaseIdentityProvider, sessions: SessionFactory
) -> None:
    fake.will_answer("admin_create_user_ok")
    async with transaction(sessions) as session:
        account = await provider.ensure_account(session, EMAIL, Role.parent)
    assert account.user_id == USER_ID
    assert account.created
    assert fake.received[0].headers["apikey"] == SERVICE_ROLE_KEY
    assert fake.body(0) == {"email": EMAIL, "email_confirm": True, "app_metadata": {"role": "parent"}}
    async with transaction(sessions) as session:  # a retried activity: the mirror answers, Supabase is not asked
        again = await provider.ensure_account(session, EMAIL, Role.parent)
    assert again.user_id == USER_ID
    assert not again.created
    assert len(fake.received) == 1


async def test_ensure_account_adopts_a_user_that_already_exists_in_supabase(
    fake: FakeSupabase, provider: SupabaseIdentityProvider, sessions: SessionFactory
) -> None:
    fake.will_answer("admin_create_user_email_exists", "admin_generate_link_magiclink")
    async with transaction(sessions) as session:
        account = await provider.ensure_account(session, EMAIL, Role.parent)
    assert account.user_id == USER_ID
    async with sessions() as session:
        mirror = await session.scalar(select(User).where(User.email == EMAIL))
    assert mirror is not None
    assert mirror.external_id == str(USER_ID)


async def test_password_links_carry_the_recovery_token_in_cedars_url_shape(
    fake: FakeSupabase, provider: SupabaseIdentityProvider, sessions: SessionFactory, settings: Settings
) -> None:
    await mirrored_user(sessions)
    fake.will_answer("admin_generate_link_recovery")
    async with transaction(sessions) as session:
        link = await provider.create_password_link(session, USER_ID, TokenPurpose.password_reset)
    hashed = load("admin_generate_link_recovery")["response"]["body"]["hashed_token"]
    assert link == f"{settings.public_base_url}/reset-password?token={hashed}"
    assert fake.body(0)["type"] == "recovery"
    assert fake.body(0)["email"] == EMAIL


async def test_a_reset_for_an_unknown_email_never_reaches_supabase(
    fake: FakeSupabase, provider: SupabaseIdentityProvider, sessions: SessionFactory
) -> None:
    await mirrored_user(sessions)
    fake.will_answer("admin_generate_link_user_not_found")
    async with transaction(sessions) as session:
        assert await provider.password_reset_link(session, "nobody@example.com") is None
        assert fake.received == []
        assert await provider.password_reset_link(session, EMAIL) is None  # gone from Supabase meanwhile
    assert len(fake.received) == 1


async def test_set_password_spends_the_link_sets_the_password_and_ends_every_session(
    fake: FakeSupabase, provider: SupabaseIdentityProvider, sessions: SessionFactory
) -> None:
    await mirrored_user(sessions)
    fake.will_answer("verify_recovery_ok", "admin_update_user_ok", "logout_global_ok")
    async with transaction(sessions) as session:
        assert await provider.set_password(session, "4d6e0b7f", TokenPurpose.set_password, "new password 42") == USER_ID
    _verify, update, logout = fake.received
    assert fake.body(0)["type"] == "recovery"
    assert fake.body(0)["token_hash"] == "4d6e0b7f"
    assert update.method == "PUT"
    assert fake.body(1) == {"password": "new password 42"}
    assert update.headers["apikey"] == SERVICE_ROLE_KEY
    assert dict(logout.url.params) == {"scope": "global"}
    assert fake.unexpected == []


@pytest.mark.parametrize(
    ("answers", "code"),
    [
        (["verify_recovery_expired"], "invalid_link"),
        (["verify_recovery_ok", "admin_update_user_weak_password"], "weak_password"),
    ],
)
async def test_set_password_refusals(
    fake: FakeSupabase, provider: SupabaseIdentityProvider, sessions: SessionFactory, answers: list[str], code: str
) -> None:
    await mirrored_user(sessions)
    fake.will_answer(*answers)
    with pytest.raises(AuthFailure) as refused:
        async with transaction(sessions) as session:
            await provider.set_password(session, "4d6e0b7f", TokenPurpose.password_reset, "short")
    assert refused.value.code == code


async def test_supabase_being_down_is_a_503_not_a_wrong_password(
    make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    provider = SupabaseIdentityProvider(
        supabase_settings(make_settings), httpx.AsyncClient(transport=httpx.MockTransport(down))
    )
    with pytest.raises(AuthFailure) as failed:
        async with transaction(sessions) as session:
            await provider.sign_in(session, EMAIL, "whatever")
    assert failed.value.code == "identity_unavailable"


@pytest.fixture
async def supabase_api(fake: FakeSupabase, make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    settings = supabase_settings(make_settings)
    app = create_app(settings)
    app.state.identity = SupabaseIdentityProvider(settings, fake.client)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cedar.test") as client,
    ):
        yield client


async def test_the_api_logs_in_and_resets_passwords_through_supabase(
    supabase_api: httpx.AsyncClient, fake: FakeSupabase, sessions: SessionFactory, smtp_sink: SmtpSink
) -> None:
    fake.will_answer("token_password_ok")
    login = await supabase_api.post(f"{AUTH}/login", json={"email": EMAIL, "password": "the parent's password"})
    assert login.status_code == 200, login.text
    assert login.json()["refresh_token"] == "yq2nr6ka7v5w"
    assert login.json()["user"]["role"] == "parent"

    fake.will_answer("admin_generate_link_recovery", "verify_recovery_ok", "admin_update_user_ok", "logout_global_ok")
    assert (await supabase_api.post(f"{AUTH}/password-reset", json={"email": EMAIL})).status_code == 202
    [message] = await smtp_sink.wait_for_messages(EMAIL)
    token = re.search(r"/reset-password\?token=([0-9a-f]+)", message["text"])
    assert token
    assert token.group(1) == load("admin_generate_link_recovery")["response"]["body"]["hashed_token"]
    confirmed = await supabase_api.post(
        f"{AUTH}/password-reset/confirm", json={"token": token.group(1), "password": "a new password 42"}
    )
    assert confirmed.status_code == 204, confirmed.text
    assert fake.unexpected == []


async def test_off_boarding_bans_the_supabase_user_and_an_email_change_moves_it(
    supabase_api: httpx.AsyncClient,
    fake: FakeSupabase,
    sessions: SessionFactory,
    make_settings: Callable[..., Settings],
) -> None:
    async with transaction(sessions) as session:
        session.add(User(id=USER_ID, email=EMAIL, role=Role.parent, external_id=str(USER_ID)))
        await session.flush()
        parent = Parent(user_id=USER_ID, first_name="Jordan", last_name="Lee", email=EMAIL, phone="604-555-0100")
        admin = User(email="admin-supabase@cedar.test", role=Role.admin)
        session.add_all([parent, admin])
    # An admin's token as Supabase signs it: the project's secret.
    token = issue_access_token(
        supabase_settings(make_settings, jwt_secret=PROJECT_JWT_SECRET), admin.id, admin.email, "admin"
    )
    headers = {"Authorization": f"Bearer {token}"}

    fake.will_answer("admin_update_user_ok")
    moved = await supabase_api.patch(
        f"/api/v1/parents/{parent.id}", headers=headers, json={"email": "j.lee@example.com"}
    )
    assert moved.status_code == 200, moved.text
    assert fake.received[0].url.path == f"/auth/v1/admin/users/{USER_ID}"
    assert fake.body(0) == {"email": "j.lee@example.com", "email_confirm": True}

    fake.will_answer("admin_update_user_banned")
    assert (await supabase_api.delete(f"/api/v1/parents/{parent.id}", headers=headers)).status_code == 204
    assert fake.received[1].method == "PUT"
    assert fake.body(1) == {"ban_duration": "876000h"}

    # Refused here even if Supabase were to let the user in: it is never asked.
    login = await supabase_api.post(f"{AUTH}/login", json={"email": "j.lee@example.com", "password": "whatever"})
    assert login.status_code == 401
    assert len(fake.received) == 2
    assert fake.unexpected == []


def test_the_worker_chooses_supabase_when_its_url_is_set(make_settings: Callable[..., Settings]) -> None:
    from core.identity import BuiltinIdentityProvider
    from workers.main import build_identity

    assert isinstance(build_identity(supabase_settings(make_settings)), SupabaseIdentityProvider)
    assert isinstance(build_identity(make_settings()), BuiltinIdentityProvider)
    with pytest.raises(ValueError, match="supabase_anon_key"):
        build_identity(make_settings(supabase_url="https://project.supabase.co"))
