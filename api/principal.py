"""Who is calling: the ``Principal`` behind a bearer token, and role guards for routes.

Object-level rules (a parent sees only their family, a teacher only their students) are applied by each
route's queries using ``principal.parent_id`` / ``principal.teacher_id``; another family's object is a 404.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header
from sqlalchemy import select

from api.deps import SessionDep, SettingsDep
from api.errors import CedarError
from core.tokens import InvalidToken, verify_access_token
from models import Parent, Role, Teacher, User


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    email: str
    role: Role
    parent_id: uuid.UUID | None = None
    teacher_id: uuid.UUID | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin


def _unauthorized(detail: str) -> CedarError:
    return CedarError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


async def get_principal(
    session: SessionDep, settings: SettingsDep, authorization: Annotated[str | None, Header()] = None
) -> Principal:
    if not authorization or not authorization.lower().startswith("bearer "):
        raise _unauthorized("a bearer token is required")
    try:
        claims = verify_access_token(settings, authorization[7:].strip())
    except InvalidToken as exc:
        raise _unauthorized("the token is invalid or expired") from exc
    user = await session.get(User, claims.user_id)
    if user is None or not user.is_active:
        raise _unauthorized("the account is not active")
    parent_id = teacher_id = None
    if user.role == Role.parent:
        parent_id = await session.scalar(select(Parent.id).where(Parent.user_id == user.id))
    elif user.role == Role.teacher:
        teacher_id = await session.scalar(select(Teacher.id).where(Teacher.user_id == user.id))
    return Principal(user.id, user.email, Role(user.role), parent_id, teacher_id)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


def require_roles(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency that lets only the given roles through (403 for a signed-in user of another role)."""

    def guard(principal: CurrentPrincipal) -> Principal:
        if principal.role not in roles:
            raise CedarError(403, "forbidden", f"this action needs the role {' or '.join(roles)}")
        return principal

    return guard


AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.admin))]
StaffPrincipal = Annotated[Principal, Depends(require_roles(Role.admin, Role.teacher))]
