"""The login account behind a parent or teacher: created when the school adds them, moved when their email
changes, deactivated when they leave."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.errors import CedarError, Conflict
from api.repositories.base import flush_or_conflict
from core.identity import AuthFailure, IdentityService, upsert_local_user
from domain.accounts import deactivation_refused
from models import Parent, Role, Teacher, User


async def link_account(session: AsyncSession, email: str, role: Role) -> uuid.UUID:
    """The user id for ``email`` with ``role``, created without a password (they set one through a reset link).

    An existing account of another role, or one already linked to a profile, is a 409. An unlinked account of the
    same role (someone removed earlier, now added again) is reactivated.
    """
    account = await upsert_local_user(session, email, role)
    if not account.created:
        user = await session.get(User, account.user_id, with_for_update=True)
        taken = await session.scalar(
            select(col(Parent.id))
            .where(col(Parent.user_id) == account.user_id)
            .union(select(col(Teacher.id)).where(col(Teacher.user_id) == account.user_id))
        )
        if user is None or user.role != role or taken is not None:
            raise Conflict(f"{email} already belongs to another account", {"email": "already in use"})
        user.is_active, user.updated_at = True, datetime.now(UTC)
    return account.user_id


async def deactivate_account(session: AsyncSession, identity: IdentityService, user_id: uuid.UUID | None) -> None:
    """The account can no longer sign in, refresh, or use a token it already holds (the principal lookup reads
    ``users.is_active`` on every request). The last active admin is refused with a 409."""
    if user_id is None:
        return
    user = await session.get(User, user_id, with_for_update=True)
    if user is None or not user.is_active:
        return
    other_admins = 0
    if user.role == Role.admin:
        # Locking every active admin row serialises two admins removing each other at the same moment.
        admins = await session.scalars(
            select(col(User.id)).where(col(User.role) == Role.admin, col(User.is_active)).with_for_update()
        )
        other_admins = sum(1 for admin in admins if admin != user.id)
    problem = deactivation_refused(user.role, other_admins)
    if problem is not None:
        raise Conflict(problem)
    user.is_active, user.updated_at = False, datetime.now(UTC)
    await session.flush()
    await _at_provider(identity.account_deactivated(session, user))


async def reactivate_account(session: AsyncSession, identity: IdentityService, user_id: uuid.UUID | None) -> None:
    """Signing in works again (with the same password); sessions ended by the deactivation stay ended."""
    user = await session.get(User, user_id, with_for_update=True) if user_id is not None else None
    if user is None or user.is_active:
        return
    user.is_active, user.updated_at = True, datetime.now(UTC)
    await session.flush()
    await _at_provider(identity.account_reactivated(session, user))


async def move_account_email(
    session: AsyncSession, identity: IdentityService, user_id: uuid.UUID | None, email: str
) -> None:
    """The login follows a parent's or teacher's new address; an address another account holds is a 409."""
    user = await session.get(User, user_id, with_for_update=True) if user_id is not None else None
    if user is None or user.email == email:
        return
    holder = await session.scalar(select(func.count()).select_from(User).where(col(User.email) == email))
    if holder:
        raise Conflict(f"{email} already belongs to another account", {"email": "already in use"})
    user.email, user.updated_at = email, datetime.now(UTC)
    await flush_or_conflict(session, f"{email} already belongs to another account")
    await _at_provider(identity.account_email_changed(session, user))


async def _at_provider(change: Awaitable[None]) -> None:
    """Runs a change at the identity provider; unreachable, the request fails whole (its transaction rolls back)."""
    try:
        await change
    except AuthFailure as failure:
        raise CedarError(503, failure.code, failure.detail) from failure
