"""The identity port: where login accounts are made and people sign in. Built-in (our database) by default;
Supabase Auth when ``supabase_url`` is set (``core.supabase_identity``).

Every adapter mirrors the account as a row of ``users`` (for Supabase, with ``external_id`` = the Supabase user
id), so roles, row-level rules and the lockout counters work the same whichever provider holds the password.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.passwords import hash_password, needs_rehash, verify_password
from core.settings import Settings
from core.tokens import (
    InvalidRefreshToken,
    hash_token,
    issue_access_token,
    issue_refresh_token,
    revoke_refresh_family,
    revoke_user_refresh_tokens,
    rotate_refresh_token,
)
from models import OneTimeToken, RefreshToken, Role, TokenPurpose, User

LINK_PATHS = {TokenPurpose.set_password: "set-password", TokenPurpose.password_reset: "reset-password"}


@dataclass(frozen=True)
class Account:
    user_id: uuid.UUID
    email: str
    created: bool  # False when the account already existed (a sibling's enrollment, a retried activity)


@dataclass(frozen=True)
class SignedIn:
    """What a login or refresh hands the client: Supabase's session shape, whichever provider made it."""

    access_token: str
    refresh_token: str
    expires_in: int  # seconds
    user_id: uuid.UUID
    email: str
    role: str


@dataclass(frozen=True)
class ResetLink:
    user_id: uuid.UUID
    email: str
    link: str


class AuthFailure(Exception):
    """A refused sign-in, refresh or link; ``code`` is the API error code, ``retry_after`` is in seconds."""

    def __init__(self, code: str, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.retry_after = retry_after


class IdentityProvider(Protocol):
    async def ensure_account(self, session: AsyncSession, email: str, role: Role) -> Account:
        """Creates the login account for ``email`` unless it exists; never sets or returns a password."""
        ...

    async def create_password_link(self, session: AsyncSession, user_id: uuid.UUID, purpose: TokenPurpose) -> str:
        """A one-time, expiring link for setting a password. Only ever sent by email, never logged."""
        ...


class IdentityService(IdentityProvider, Protocol):
    """What the API's auth endpoints need on top of account creation."""

    async def sign_in(self, session: AsyncSession, email: str, password: str) -> SignedIn: ...

    async def refresh(self, session: AsyncSession, refresh_token: str) -> SignedIn: ...

    async def sign_out(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        access_token: str,
        session_id: uuid.UUID | None,
        refresh_token: str | None,
    ) -> None:
        """Ends the caller's session; a refresh token of another user is ignored, never revoked."""
        ...

    async def password_reset_link(self, session: AsyncSession, email: str) -> ResetLink | None:
        """A reset link for an active account, or None (the caller answers the same either way)."""
        ...

    async def set_password(self, session: AsyncSession, token: str, purpose: TokenPurpose, password: str) -> uuid.UUID:
        """Spends a one-time link, sets the password and ends every session of the user."""
        ...

    async def account_deactivated(self, session: AsyncSession, user: User) -> None:
        """``user`` was just made inactive: end its sessions and refuse its sign-ins at the provider too."""
        ...

    async def account_reactivated(self, session: AsyncSession, user: User) -> None:
        """``user`` was made active again: the provider lets it sign in again."""
        ...

    async def account_email_changed(self, session: AsyncSession, user: User) -> None:
        """``user.email`` changed: the provider signs the account in under the new address."""
        ...

    async def account_deleted(self, session: AsyncSession, user: User) -> bool:
        """``user``'s family is erased: the provider forgets the account (the ``users`` row stays, anonymized,
        for the ids that point at it). True when something was removed, False when it was gone already."""
        ...


def create_identity_service(settings: Settings) -> IdentityService:
    if settings.supabase_url:
        from core.supabase_identity import SupabaseIdentityProvider  # only deployments on Supabase need it

        return SupabaseIdentityProvider(settings)
    return BuiltinIdentityProvider(settings)


async def upsert_local_user(
    session: AsyncSession, email: str, role: Role, external_id: str | None = None, user_id: uuid.UUID | None = None
) -> Account:
    email = email.strip().lower()
    inserted = await session.scalar(
        insert(User)
        .values(id=user_id or uuid.uuid4(), email=email, role=role, external_id=external_id)
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(col(User.id))
    )
    if inserted is not None:
        return Account(inserted, email, created=True)
    existing = await session.scalar(select(col(User.id)).where(col(User.email) == email))
    assert existing is not None
    return Account(existing, email, created=False)


async def anonymize_local_user(session: AsyncSession, user: User) -> bool:
    """The ``users`` row of an erased account: no address, password, provider id, session or link left."""
    erased_email = user.email if user.email.endswith("@erased.invalid") else f"erased-{user.id}@erased.invalid"
    changed = (user.email, user.password_hash, user.external_id, user.is_active) != (erased_email, None, None, False)
    user.email, user.password_hash, user.external_id, user.is_active = erased_email, None, None, False
    tokens = await session.execute(delete(RefreshToken).where(col(RefreshToken.user_id) == user.id))
    links = await session.execute(delete(OneTimeToken).where(col(OneTimeToken.user_id) == user.id))
    removed = cast(CursorResult[Any], tokens).rowcount + cast(CursorResult[Any], links).rowcount
    return changed or removed > 0


# --- lockout, shared by both adapters (the counters live on our users row) ---


async def find_user_for_login(session: AsyncSession, email: str) -> User | None:
    user = await session.scalar(select(User).where(col(User.email) == email.strip().lower()).with_for_update())
    if user is not None and user.locked_until is not None:
        wait = (user.locked_until - datetime.now(UTC)).total_seconds()
        if wait > 0:
            raise AuthFailure("account_locked", "too many failed logins; try again later", retry_after=int(wait) + 1)
    return user


def record_failed_login(settings: Settings, user: User) -> None:
    user.failed_logins += 1
    if user.failed_logins >= settings.lockout_after_failures:
        user.failed_logins = 0
        user.locked_until = datetime.now(UTC) + settings.lockout_duration


def record_successful_login(user: User) -> None:
    user.failed_logins = 0
    user.locked_until = None


def invalid_credentials() -> AuthFailure:
    return AuthFailure("invalid_credentials", "the email or password is wrong")


@cache
def _decoy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


async def _check_password(password_hash: str | None, password: str) -> bool:
    # argon2 is deliberately slow: off the event loop. A missing account still pays for one verification so
    # response times do not reveal which emails exist.
    matches = await asyncio.to_thread(verify_password, password_hash or _decoy_hash(), password)
    return matches and password_hash is not None


async def spend_one_time_token(session: AsyncSession, token: str, purpose: TokenPurpose) -> OneTimeToken:
    row = await session.scalar(
        select(OneTimeToken)
        .where(col(OneTimeToken.token_hash) == hash_token(token), col(OneTimeToken.purpose) == purpose)
        .with_for_update()
    )
    now = datetime.now(UTC)
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise AuthFailure("invalid_link", "the link is invalid, used or expired; ask for a new one")
    row.used_at = now
    return row


async def close_open_links(session: AsyncSession, user_id: uuid.UUID, purpose: TokenPurpose) -> None:
    """Only the newest link of a kind works: older unused ones are closed."""
    await session.execute(
        update(OneTimeToken)
        .where(
            col(OneTimeToken.user_id) == user_id,
            col(OneTimeToken.purpose) == purpose,
            col(OneTimeToken.used_at).is_(None),
        )
        .values(used_at=datetime.now(UTC))
    )


class BuiltinIdentityProvider:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def ensure_account(self, session: AsyncSession, email: str, role: Role) -> Account:
        return await upsert_local_user(session, email, role)

    async def create_password_link(self, session: AsyncSession, user_id: uuid.UUID, purpose: TokenPurpose) -> str:
        token = secrets.token_urlsafe(32)
        ttl = (
            self._settings.set_password_ttl
            if purpose == TokenPurpose.set_password
            else self._settings.password_reset_ttl
        )
        session.add(
            OneTimeToken(
                user_id=user_id,
                purpose=purpose,
                token_hash=hash_token(token),
                expires_at=datetime.now(UTC) + ttl,
            )
        )
        return f"{self._settings.public_base_url}/{LINK_PATHS[TokenPurpose(purpose)]}?token={token}"

    async def sign_in(self, session: AsyncSession, email: str, password: str) -> SignedIn:
        user = await find_user_for_login(session, email)
        password_hash = user.password_hash if user is not None and user.is_active else None
        if not await _check_password(password_hash, password):
            if user is not None:
                record_failed_login(self._settings, user)
            raise invalid_credentials()
        assert user is not None
        record_successful_login(user)
        if user.password_hash and needs_rehash(user.password_hash):
            user.password_hash = await asyncio.to_thread(hash_password, password)
        return await self._session_for(session, user)

    async def refresh(self, session: AsyncSession, refresh_token: str) -> SignedIn:
        try:
            issued = await rotate_refresh_token(session, self._settings, refresh_token)
        except InvalidRefreshToken as exc:
            raise AuthFailure("invalid_refresh_token", str(exc)) from exc
        user = await session.get(User, issued.user_id)
        if user is None or not user.is_active:
            await revoke_refresh_family(session, issued.family_id)
            raise AuthFailure("invalid_refresh_token", "the account is not active")
        return self._signed_in(user, issued.token, issued.family_id)

    async def sign_out(
        self,
        session: AsyncSession,
        user_id: uuid.UUID,
        access_token: str,
        session_id: uuid.UUID | None,
        refresh_token: str | None,
    ) -> None:
        families = {session_id} if session_id else set()
        if refresh_token:
            family = await session.scalar(
                select(col(RefreshToken.family_id)).where(
                    col(RefreshToken.token_hash) == hash_token(refresh_token), col(RefreshToken.user_id) == user_id
                )
            )
            if family is not None:
                families.add(family)
        for family_id in families:
            await revoke_refresh_family(session, family_id)

    async def password_reset_link(self, session: AsyncSession, email: str) -> ResetLink | None:
        user = await session.scalar(select(User).where(col(User.email) == email.strip().lower()))
        if user is None or not user.is_active:
            return None
        await close_open_links(session, user.id, TokenPurpose.password_reset)
        link = await self.create_password_link(session, user.id, TokenPurpose.password_reset)
        return ResetLink(user.id, user.email, link)

    async def set_password(self, session: AsyncSession, token: str, purpose: TokenPurpose, password: str) -> uuid.UUID:
        spent = await spend_one_time_token(session, token, purpose)
        user = await session.get(User, spent.user_id, with_for_update=True)
        if user is None or not user.is_active:
            raise AuthFailure("invalid_link", "the link is invalid, used or expired; ask for a new one")
        user.password_hash = await asyncio.to_thread(hash_password, password)
        user.updated_at = datetime.now(UTC)
        record_successful_login(user)
        await close_open_links(session, user.id, purpose)
        await revoke_user_refresh_tokens(session, user.id)
        return user.id

    async def account_deactivated(self, session: AsyncSession, user: User) -> None:
        await revoke_user_refresh_tokens(session, user.id)

    async def account_reactivated(self, session: AsyncSession, user: User) -> None:
        return None  # the users row is the account

    async def account_email_changed(self, session: AsyncSession, user: User) -> None:
        return None  # the users row is the account

    async def account_deleted(self, session: AsyncSession, user: User) -> bool:
        return await anonymize_local_user(session, user)

    async def _session_for(self, session: AsyncSession, user: User) -> SignedIn:
        issued = await issue_refresh_token(session, self._settings, user.id)
        return self._signed_in(user, issued.token, issued.family_id)

    def _signed_in(self, user: User, refresh_token: str, family_id: uuid.UUID) -> SignedIn:
        settings = self._settings
        return SignedIn(
            access_token=issue_access_token(settings, user.id, user.email, user.role, session_id=family_id),
            refresh_token=refresh_token,
            expires_in=int(settings.access_token_ttl.total_seconds()),
            user_id=user.id,
            email=user.email,
            role=user.role,
        )
