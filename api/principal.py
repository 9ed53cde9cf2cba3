"""Who is calling: the ``Principal`` behind a bearer token, and role guards for routes.

Object-level rules (a parent sees only their family, a teacher only their students) are applied by each
route's queries using ``principal.parent_id`` / ``principal.teacher_id``; another family's object is a 404.
Which roles may call which route is declared in ``api.access.ROUTE_ACCESS`` and checked by a test.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Uuid, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.deps import SessionDep, SettingsDep, TransactionDep
from api.errors import CedarError
from core.settings import Settings
from core.tokens import AccessTokenVerifier, InvalidToken, session_revoked_clause
from models import Parent, Role, Teacher, User


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    email: str
    role: Role
    parent_id: uuid.UUID | None = None
    teacher_id: uuid.UUID | None = None
    # The login session (refresh-token family) and the bearer token itself, which logout needs.
    session_id: uuid.UUID | None = None
    access_token: str = field(default="", repr=False)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin


# Declares the bearer scheme in OpenAPI (the docs' "Authorize" button); we answer 401 ourselves, in our shape.
_bearer = HTTPBearer(auto_error=False, description="An access token from POST /api/v1/auth/login")


# One round trip: the account, its family or teacher row, and whether the session was logged out. Built once with
# bind parameters: constructing and cache-keying it per request cost more than running it.
_PRINCIPAL_ROW = (
    select(
        col(User.id),
        col(User.email),
        col(User.role),
        col(Parent.id),
        col(Teacher.id),
        session_revoked_clause(bindparam("session_id", type_=Uuid())),
    )
    .outerjoin(Parent, col(Parent.user_id) == col(User.id))
    .outerjoin(Teacher, col(Teacher.user_id) == col(User.id))
    .where(
        or_(col(User.id) == bindparam("user_id"), col(User.external_id) == bindparam("external_id")),
        col(User.is_active).is_(True),
    )
)


def _unauthorized(detail: str) -> CedarError:
    return CedarError(401, "unauthorized", detail, headers={"WWW-Authenticate": "Bearer"})


def token_verifier(request: Request, settings: Settings) -> AccessTokenVerifier:
    """One verifier per app, so the Supabase JWKS is fetched once and cached, not per request."""
    verifier: AccessTokenVerifier | None = getattr(request.app.state, "token_verifier", None)
    if verifier is None:
        verifier = request.app.state.token_verifier = AccessTokenVerifier(settings)
    return verifier


async def resolve_principal(
    request: Request, session: AsyncSession, settings: Settings, credentials: HTTPAuthorizationCredentials | None
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("a bearer token is required")
    token = credentials.credentials.strip()
    try:
        claims = await token_verifier(request, settings).verify(token)
    except InvalidToken as exc:
        raise _unauthorized("the token is invalid or expired") from exc
    row = (
        await session.execute(
            _PRINCIPAL_ROW,
            {"user_id": claims.user_id, "external_id": str(claims.user_id), "session_id": claims.session_id},
        )
    ).first()
    if row is None:
        raise _unauthorized("the account is not active")
    user_id, email, role, parent_id, teacher_id, revoked = row
    if revoked:
        raise _unauthorized("the session has ended; sign in again")
    role = Role(role)
    return Principal(
        user_id,
        email,
        role,
        parent_id if role == Role.parent else None,
        teacher_id if role == Role.teacher else None,
        claims.session_id,
        token,
    )


async def get_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    return await resolve_principal(request, session, settings, credentials)


async def get_principal_in_transaction(
    request: Request,
    session: TransactionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """For a route that works in one transaction (``TransactionDep``): the principal is read on that transaction's
    connection, so the request holds one pooled connection, never two. (Two per request would wait on each other
    once concurrent requests had taken the whole pool.)"""
    return await resolve_principal(request, session, settings, credentials)


# The raw bearer credentials, for a public route that behaves differently for a signed-in caller.
BearerCredentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
TransactionPrincipal = Annotated[Principal, Depends(get_principal_in_transaction)]


def ensure_role(principal: Principal, *roles: Role) -> Principal:
    """403 for a signed-in user whose role is not among ``roles``."""
    if principal.role not in roles:
        raise CedarError(403, "forbidden", f"this action needs the role {' or '.join(roles)}")
    return principal


def require_roles(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency that lets only the given roles through (403 for a signed-in user of another role)."""

    async def guard(principal: CurrentPrincipal) -> Principal:
        return ensure_role(principal, *roles)

    return guard


AdminPrincipal = Annotated[Principal, Depends(require_roles(Role.admin))]
StaffPrincipal = Annotated[Principal, Depends(require_roles(Role.admin, Role.teacher))]
