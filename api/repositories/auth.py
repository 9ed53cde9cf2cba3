"""The signed-in user's own profile row: a parent's or a teacher's (an admin has none)."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from api.principal import Principal
from models import Parent, Teacher


async def profile_row(
    session: AsyncSession, principal: Principal, *, for_update: bool = False
) -> Parent | Teacher | None:
    if principal.parent_id:
        return await session.get(Parent, principal.parent_id, with_for_update=for_update)
    if principal.teacher_id:
        return await session.get(Teacher, principal.teacher_id, with_for_update=for_update)
    return None
