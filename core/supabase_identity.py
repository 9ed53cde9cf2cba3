"""The Supabase Auth adapter of the identity port, through the ``supabase`` Python client.

Supabase holds the passwords and sessions; Cedar mirrors each account as a ``users`` row whose ``id`` and
``external_id`` are the Supabase user id, so the principal lookup, roles and lockout counters work unchanged.
A fresh client is made per operation: the client keeps the signed-in session in its own headers, which must
never leak from one request to another. The HTTP connection pool underneath is shared.

Links: Cedar emails its own links (same templates as the built-in provider). ``admin.generate_link`` mints a
recovery token without Supabase sending anything; the link carries its ``hashed_token`` and the set-password
endpoint spends it with ``verify_otp``.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from supabase import AsyncClient, AsyncClientOptions
from supabase_auth.errors import AuthApiError, AuthError, AuthWeakPasswordError
from supabase_auth.types import AdminUserAttributes
from supabase_auth.types import User as SupabaseUser

from core.identity import (
    LINK_PATHS,
    Account,
    AuthFailure,
    ResetLink,
    SignedIn,
    anonymize_local_user,
    find_user_for_login,
    invalid_credentials,
    record_failed_login,
    record_successful_login,
    upsert_local_user,
)
from core.settings import Settings
from models import Role, TokenPurpose, User

REFUSED_REFRESH = "the refresh token is invalid, expired or already used"
# GoTrue bans for a duration; a century is its usual "until lifted" (lifted with "none").
BANNED_FOR = "876000h"


def _unavailable(exc: AuthError) -> AuthFailure:
    return AuthFailure("identity_unavailable", f"the identity service is unavailable ({type(exc).__name__})")


def _is_refusal(exc: AuthError) -> bool:
    """A 4xx from Supabase is its answer about the request; anything else means it could not answer."""
    return isinstance(exc, AuthApiError) and 400 <= exc.status < 500


class SupabaseIdentityProvider:
    def __init__(self, settings: Settings, http_client: httpx.AsyncClient | None = None) -> None:
        if not (settings.supabase_url and settings.supabase_anon_key and settings.supabase_service_role_key):
            raise ValueError("Supabase needs supabase_url, supabase_anon_key and supabase_service_role_key")
        self._settings = settings
        self._http = http_client or httpx.AsyncClient(timeout=10, follow_redirects=True)

    def _client(self, *, admin: bool) -> AsyncClient:
        settings = self._settings
        key = settings.supabase_service_role_key if admin else settings.supabase_anon_key
        options = AsyncClientOptions(auto_refresh_token=False, persist_session=False, httpx_client=self._http)
        return AsyncClient(str(settings.supabase_url), str(key), options)

    # --- accounts (the enrollment workflow's port) ---

    async def ensure_account(self, session: AsyncSession, email: str, role: Role) -> Account:
        email = email.strip().lower()
        known = await session.scalar(select(User).where(col(User.email) == email, col(User.external_id).is_not(None)))
        if known is not None:
            return Account(known.id, email, created=False)
        admin = self._client(admin=True).auth.admin
        try:
            created = await admin.create_user(
                {"email": email, "email_confirm": True, "app_metadata": {"role": str(role)}}
            )
            remote = created.user
        except AuthApiError as exc:
            if exc.code != "email_exists":
                raise
            # The account exists in Supabase already: a link request (never sent) is how the admin API finds it.
            remote = (await admin.generate_link({"type": "magiclink", "email": email})).user
        return await self._mirror(session, remote, role)

    async def create_password_link(self, session: AsyncSession, user_id: uuid.UUID, purpose: TokenPurpose) -> str:
        user = await session.get(User, user_id)
        if user is None:
            raise ValueError("no such user")
        return await self._recovery_link(user.email, TokenPurpose(purpose))

    # --- sessions ---

    async def sign_in(self, session: AsyncSession, email: str, password: str) -> SignedIn:
        local = await find_user_for_login(session, email)
        if local is not None and not local.is_active:
            raise invalid_credentials()  # deactivated here, whatever Supabase still thinks
        try:
            response = await self._client(admin=False).auth.sign_in_with_password(
                {"email": email.strip().lower(), "password": password}
            )
        except AuthError as exc:
            if not _is_refusal(exc):
                raise _unavailable(exc) from exc
            if local is not None:
                record_failed_login(self._settings, local)
            raise invalid_credentials() from exc
        assert response.session is not None
        assert response.user is not None
        if local is not None:
            record_successful_login(local)
        return await self._signed_in(
            session,
            response.session.access_token,
            response.session.refresh_token,
            response.session.expires_in,
            response.user,
        )

    async def refresh(self, session: AsyncSession, refresh_token: str) -> SignedIn:
        try:
            response = await self._client(admin=False).auth.refresh_session(refresh_token)
        except AuthError as exc:
            # Supabase detects the reuse of a rotated token itself and revokes the session's tokens.
            if not _is_refusal(exc):
                raise _unavailable(exc) from exc
            raise AuthFailure("invalid_refresh_token", REFUSED_REFRESH) from exc
        assert response.session is not None
        assert response.user is not None
        return await self._signed_in(
            session,
            response.session.access_token,
            response.session.refresh_token,
            response.session.expires_in,
            response.user,
            "invalid_refresh_token",
        )

    async def sign_out(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        access_token: str,
        session_id: uuid.UUID | None,
        refresh_token: str | None,
    ) -> None:
        # Supabase ends the session the access token belongs to, and with it that session's refresh tokens.
        try:
            await self._client(admin=True).auth.admin.sign_out(access_token, "local")
        except AuthError as exc:
            if not _is_refusal(exc):  # a 401/404 means the session is already gone: nothing left to end
                raise _unavailable(exc) from exc

    # --- passwords ---

    async def password_reset_link(self, session: AsyncSession, email: str) -> ResetLink | None:
        user = await session.scalar(select(User).where(col(User.email) == email.strip().lower()))
        if user is None or not user.is_active:
            return None
        try:
            link = await self._recovery_link(user.email, TokenPurpose.password_reset)
        except AuthApiError as exc:
            if exc.code == "user_not_found":
                return None
            raise _unavailable(exc) from exc
        return ResetLink(user.id, user.email, link)

    async def set_password(self, session: AsyncSession, token: str, purpose: TokenPurpose, password: str) -> uuid.UUID:
        try:
            verified = await self._client(admin=False).auth.verify_otp({"type": "recovery", "token_hash": token})
        except AuthError as exc:
            if not _is_refusal(exc):
                raise _unavailable(exc) from exc
            raise AuthFailure("invalid_link", "the link is invalid, used or expired; ask for a new one") from exc
        assert verified.user is not None
        assert verified.session is not None
        admin = self._client(admin=True).auth.admin
        try:
            await admin.update_user_by_id(verified.user.id, {"password": password})
            # A new password ends every session, as with the built-in provider.
            await admin.sign_out(verified.session.access_token, "global")
        except AuthWeakPasswordError as exc:
            raise AuthFailure("weak_password", f"the password is too weak: {', '.join(exc.reasons)}") from exc
        except AuthError as exc:
            raise _unavailable(exc) from exc
        local = await session.scalar(select(User).where(col(User.external_id) == verified.user.id).with_for_update())
        if local is None:
            raise AuthFailure("invalid_link", "this account has no access to Cedar")
        record_successful_login(local)
        return local.id

    # --- the account's life (the school's off-boarding and profile changes) ---

    async def account_deactivated(self, session: AsyncSession, user: User) -> None:
        # A banned user cannot sign in or refresh at Supabase; the access tokens it holds are refused by the
        # principal lookup, which reads users.is_active.
        await self._update_remote(user, {"ban_duration": BANNED_FOR})

    async def account_reactivated(self, session: AsyncSession, user: User) -> None:
        await self._update_remote(user, {"ban_duration": "none"})

    async def account_email_changed(self, session: AsyncSession, user: User) -> None:
        await self._update_remote(user, {"email": user.email, "email_confirm": True})

    async def account_deleted(self, session: AsyncSession, user: User) -> bool:
        removed = False
        if user.external_id is not None:
            try:
                await self._client(admin=True).auth.admin.delete_user(user.external_id)
                removed = True
            except AuthApiError as exc:
                if exc.code != "user_not_found":  # a 404 means Supabase forgot it already
                    raise _unavailable(exc) from exc
            except AuthError as exc:
                raise _unavailable(exc) from exc
        return await anonymize_local_user(session, user) or removed

    # --- helpers ---

    async def _update_remote(self, user: User, attributes: AdminUserAttributes) -> None:
        if user.external_id is None:  # a built-in account never moved to Supabase: nothing to change there
            return
        try:
            await self._client(admin=True).auth.admin.update_user_by_id(user.external_id, attributes)
        except AuthError as exc:
            raise _unavailable(exc) from exc

    async def _recovery_link(self, email: str, purpose: TokenPurpose) -> str:
        base = self._settings.public_base_url
        generated = await self._client(admin=True).auth.admin.generate_link(
            {"type": "recovery", "email": email, "options": {"redirect_to": f"{base}/{LINK_PATHS[purpose]}"}}
        )
        return f"{base}/{LINK_PATHS[purpose]}?token={generated.properties.hashed_token}"

    async def _mirror(self, session: AsyncSession, remote: SupabaseUser, role: Role) -> Account:
        assert remote.email is not None
        account = await upsert_local_user(
            session, remote.email, role, external_id=remote.id, user_id=uuid.UUID(remote.id)
        )
        if not account.created:  # a row made before the switch to Supabase: link it
            await session.execute(
                update(User)
                .where(col(User.id) == account.user_id, col(User.external_id).is_(None))
                .values(external_id=remote.id)
            )
        return account

    async def _signed_in(
        self,
        session: AsyncSession,
        access_token: str,
        refresh_token: str,
        expires_in: int,
        remote: SupabaseUser,
        refused_code: str = "invalid_credentials",
    ) -> SignedIn:
        local = await session.scalar(select(User).where(col(User.external_id) == remote.id))
        if local is not None and not local.is_active:
            raise AuthFailure(refused_code, "the account is not active")
        role = local.role if local is not None else _app_role(remote.app_metadata)
        if role is None:
            raise AuthFailure("invalid_credentials", "this account has no access to Cedar")
        if local is None:
            await self._mirror(session, remote, Role(role))
        return SignedIn(
            access_token=access_token,
            refresh_token=refresh_token,
            expires_in=expires_in,
            user_id=local.id if local is not None else uuid.UUID(remote.id),
            email=remote.email or "",
            role=role,
        )


def _app_role(app_metadata: dict[str, Any]) -> str | None:
    role = app_metadata.get("role")
    return role if role in ("admin", "teacher", "parent") else None
