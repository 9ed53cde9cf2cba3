"""The identity port: where login accounts are made. Built-in (our database) by default; Supabase Auth when set.

Every adapter mirrors the account as a row of ``users`` (for Supabase, with ``external_id`` = the Supabase user
id), so roles and row-level rules work the same whichever provider holds the password.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.settings import Settings
from models import OneTimeToken, Role, TokenPurpose, User


@dataclass(frozen=True)
class Account:
    user_id: uuid.UUID
    email: str
    created: bool  # False when the account already existed (a sibling's enrollment, a retried activity)


class IdentityProvider(Protocol):
    async def ensure_account(self, session: AsyncSession, email: str, role: Role) -> Account:
        """Creates the login account for ``email`` unless it exists; never sets or returns a password."""
        ...

    async def create_password_link(
        self, session: AsyncSession, user_id: uuid.UUID, purpose: TokenPurpose
    ) -> str:
        """A one-time, expiring link for setting a password. Only ever sent by email, never logged."""
        ...


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def upsert_local_user(
    session: AsyncSession, email: str, role: Role, external_id: str | None = None
) -> Account:
    email = email.strip().lower()
    inserted = await session.scalar(
        insert(User)
        .values(id=uuid.uuid4(), email=email, role=role, external_id=external_id)
        .on_conflict_do_nothing(index_elements=["email"])
        .returning(User.id)
    )
    if inserted is not None:
        return Account(inserted, email, created=True)
    existing = await session.scalar(select(User.id).where(User.email == email))
    assert existing is not None
    return Account(existing, email, created=False)


class BuiltinIdentityProvider:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    async def ensure_account(self, session: AsyncSession, email: str, role: Role) -> Account:
        return await upsert_local_user(session, email, role)

    async def create_password_link(
        self, session: AsyncSession, user_id: uuid.UUID, purpose: TokenPurpose
    ) -> str:
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
        return f"{self._settings.public_base_url}/set-password?token={token}"
