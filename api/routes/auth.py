"""/api/v1/auth: login, refresh, logout, the caller's profile, password reset and set-password.

Identity operations run in their own transaction that commits even when the operation refuses: a failed login
must count towards the lockout, and a replayed refresh token must revoke its family, though the answer is a 4xx.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import BackgroundTasks, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import ContextDep, IdentityDep, SessionDep
from api.errors import CedarError
from api.middleware import request_id
from api.principal import CurrentPrincipal
from api.repositories.auth import profile_row
from api.routing import IndexedRouter
from api.schemas.auth import (
    Accepted,
    LoginRequest,
    LogoutRequest,
    NewPasswordRequest,
    PasswordResetRequest,
    Profile,
    ProfileUpdate,
    RefreshRequest,
    SessionUser,
    TokenResponse,
)
from api.schemas.common import ErrorOut
from api.services import auth as service
from core.db import transaction
from core.identity import AuthFailure, IdentityService, SignedIn
from core.password_reset import send_password_reset
from core.rate_limit import Limit, account_key, hit, ip_key, purge_past_windows
from models import Parent, Teacher, TokenPurpose

router = IndexedRouter(prefix="/api/v1/auth", tags=["auth"])


def _errors(**described: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` in the one error shape: ``_errors(e401="why")`` documents a 401."""
    return {int(code[1:]): {"model": ErrorOut, "description": text} for code, text in described.items()}


_INVALID = "invalid request, with a message per field"
_LIMITED = "too many attempts from this address or for this account; see Retry-After"
_NO_TOKEN = "no valid bearer token"  # noqa: S105 (an error message, not a password)
_LINK_ERRORS = _errors(e400="the link is invalid, used or expired", e422=f"{_INVALID}, or a password found too weak")
T = TypeVar("T")

FAILURE_STATUS = {
    "invalid_credentials": 401,
    "invalid_refresh_token": 401,
    "account_locked": 423,
    "invalid_link": 400,
    "weak_password": 422,
    "identity_unavailable": 503,
}


def _http_error(failure: AuthFailure) -> CedarError:
    headers = {"Retry-After": str(failure.retry_after)} if failure.retry_after else None
    return CedarError(FAILURE_STATUS.get(failure.code, 400), failure.code, failure.detail, headers=headers)


async def run_committed(context: ContextDep, operation: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Runs an identity operation in its own transaction; an ``AuthFailure`` is raised after the commit."""
    failure: AuthFailure | None = None
    async with transaction(context.sessions) as session:
        try:
            return await operation(session)
        except AuthFailure as exc:
            failure = exc  # leave the block normally so what the refusal changed commits
    raise failure


async def _committed(context: ContextDep, operation: Callable[[AsyncSession], Awaitable[T]]) -> T:
    try:
        return await run_committed(context, operation)
    except AuthFailure as failure:
        raise _http_error(failure) from failure


async def rate_limit(context: ContextDep, request: Request, action: str, email: str) -> None:
    settings = context.settings
    ip = request.client.host if request.client else "unknown"
    limits = [
        Limit(ip_key(action, ip), settings.login_rate_limit_per_minute_ip),
        Limit(account_key(action, email), settings.login_rate_limit_per_minute_account),
    ]
    async with transaction(context.sessions) as session:
        wait = await hit(session, limits)
    async with transaction(context.sessions) as session:
        await purge_past_windows(session)
    if wait is not None:
        raise CedarError(429, "rate_limited", "too many attempts; retry later", headers={"Retry-After": str(wait)})


def _tokens(signed: SignedIn) -> TokenResponse:
    return TokenResponse(
        access_token=signed.access_token,
        expires_in=signed.expires_in,
        expires_at=int(time.time()) + signed.expires_in,
        refresh_token=signed.refresh_token,
        user=SessionUser(id=signed.user_id, email=signed.email, role=signed.role),
    )


@router.post(
    "/login",
    response_model=TokenResponse,
    summary="Sign in with email and password",
    responses=_errors(
        e401="wrong email or password",
        e422=_INVALID,
        e423="locked after repeated failures; see Retry-After",
        e429=_LIMITED,
        e503="the identity provider is unreachable",
    ),
)
async def login(body: LoginRequest, request: Request, context: ContextDep, identity: IdentityDep) -> TokenResponse:
    await rate_limit(context, request, "login", body.email)
    return _tokens(await _committed(context, lambda s: identity.sign_in(s, body.email, body.password)))


@router.post(
    "/refresh",
    response_model=TokenResponse,
    summary="Trade a refresh token for a new pair",
    responses=_errors(e401="unknown, expired, revoked or already used (which revokes its session)", e422=_INVALID),
)
async def refresh(body: RefreshRequest, context: ContextDep, identity: IdentityDep) -> TokenResponse:
    return _tokens(await _committed(context, lambda s: identity.refresh(s, body.refresh_token)))


@router.post(
    "/logout",
    status_code=204,
    summary="End this session (its refresh tokens stop working)",
    responses=_errors(e401=_NO_TOKEN, e422=_INVALID),
)
async def logout(
    principal: CurrentPrincipal, session: SessionDep, identity: IdentityDep, body: LogoutRequest | None = None
) -> Response:
    # In the request's own transaction, on the connection that found the principal: a second connection per
    # request would wait forever on a pool that concurrent logouts had emptied.
    refresh_token = body.refresh_token if body else None
    try:
        await identity.sign_out(session, principal.user_id, principal.access_token, principal.session_id, refresh_token)
    except AuthFailure as failure:
        raise _http_error(failure) from failure
    return Response(status_code=204)


def _profile_body(principal: CurrentPrincipal, row: Parent | Teacher | None) -> Profile:
    # The account's own fields come with the principal, loaded by the same query that authenticated the call.
    fields = row.model_dump(include={"first_name", "last_name", "phone", "display_name", "bio"}) if row else {}
    return Profile(
        id=principal.user_id,
        email=principal.email,
        role=principal.role,
        parent_id=principal.parent_id,
        teacher_id=principal.teacher_id,
        **fields,
    )


@router.get(
    "/me", response_model=Profile, summary="The caller's account and profile", responses=_errors(e401=_NO_TOKEN)
)
async def read_me(principal: CurrentPrincipal, session: SessionDep) -> Profile:
    return _profile_body(principal, await profile_row(session, principal))


@router.patch(
    "/me",
    response_model=Profile,
    summary="Update the caller's profile",
    responses=_errors(e401=_NO_TOKEN, e404="an admin account has no profile to update", e422=_INVALID),
)
async def update_me(body: ProfileUpdate, principal: CurrentPrincipal, session: SessionDep, request: Request) -> Profile:
    changes = body.model_dump(exclude_unset=True)
    row = await service.update_profile(session, principal, changes, request_id(request))
    return _profile_body(principal, row)


@router.post(
    "/password-reset",
    status_code=202,
    response_model=Accepted,
    summary="Email a password-reset link",
    responses=_errors(e422=_INVALID, e429=_LIMITED),
)
async def request_password_reset(
    body: PasswordResetRequest, request: Request, context: ContextDep, identity: IdentityDep, tasks: BackgroundTasks
) -> Accepted:
    await rate_limit(context, request, "reset", body.email)
    # Everything else happens after the answer: the same 202, as fast, whether or not the account exists.
    tasks.add_task(send_password_reset, context.sessions, identity, context.mailer, context.settings, body.email)
    return Accepted(detail="if an account exists for this email, a reset link is on its way")


@router.post(
    "/password-reset/confirm",
    status_code=204,
    summary="Set a new password with the emailed link",
    responses=_LINK_ERRORS,
)
async def confirm_password_reset(body: NewPasswordRequest, context: ContextDep, identity: IdentityDep) -> Response:
    return await _spend_link(context, identity, body, TokenPurpose.password_reset)


@router.post(
    "/set-password",
    status_code=204,
    summary="A new parent's first password, from the welcome link",
    responses=_LINK_ERRORS,
)
async def set_password(body: NewPasswordRequest, context: ContextDep, identity: IdentityDep) -> Response:
    return await _spend_link(context, identity, body, TokenPurpose.set_password)


async def _spend_link(
    context: ContextDep, identity: IdentityService, body: NewPasswordRequest, purpose: TokenPurpose
) -> Response:
    await _committed(context, lambda s: identity.set_password(s, body.token, purpose, body.password))
    return Response(status_code=204)
