"""The login account behind a parent or teacher the school adds by hand."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.errors import Conflict
from core.identity import upsert_local_user
from models import Parent, Role, Teacher, User


async def link_account(session: AsyncSession, email: str, role: Role) -> uuid.UUID:
    """The user id for ``email`` with ``role``, created without a password (they set one through a reset link).

    An existing account of another role, or one already linked to a profile, is a 409.
    """
    account = await upsert_local_user(session, email, role)
    if not account.created:
        user = await session.get(User, account.user_id)
        taken = await session.scalar(
            select(col(Parent.id))
            .where(col(Parent.user_id) == account.user_id)
            .union(select(col(Teacher.id)).where(col(Teacher.user_id) == account.user_id))
        )
        if user is None or user.role != role or taken is not None:
            raise Conflict(f"{email} already belongs to another account", {"email": "already in use"})
    return account.user_id
