"""``/sign-in`` and ``/sign-out``: the same identity service, lockout and rate limits as ``/api/v1/auth/login``
and ``/logout``, with the session kept in a cookie (``api/pages/web.py`` says why and how)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import Response

from api.deps import ContextDep, IdentityDep
from api.errors import CedarError
from api.pages.web import (
    HOME,
    forget_session,
    new_csrf_seed,
    page_router,
    page_user,
    redirect,
    remember_session,
    render,
    safe_next,
    session_tokens,
)
from api.routes.auth import FAILURE_STATUS, rate_limit, run_committed
from core.identity import AuthFailure
from models import Role

router = page_router()

NextQuery = Annotated[str | None, Query(max_length=1000)]
MESSAGES = {
    "invalid_credentials": "The email or password is not right.",
    "account_locked": "Too many wrong passwords: this account is locked for a while. Try again later, or reset "
    "your password.",
    "identity_unavailable": "Signing in is not possible right now. Try again in a moment.",
}


@router.get("/sign-in")
async def sign_in_page(request: Request, next: NextQuery = None) -> Response:  # noqa: A002 (the query's name)
    user = await page_user(request)
    if user is not None:
        return redirect(safe_next(next) or HOME.get(user.role, "/family"))
    return await render(request, "sign_in.html", title="Sign in", next=safe_next(next) or "", email="")


@router.post("/sign-in")
async def sign_in(
    request: Request,
    context: ContextDep,
    identity: IdentityDep,
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1024)],
    next: Annotated[str, Form(max_length=1000)] = "",  # noqa: A002
) -> Response:
    target = safe_next(next)
    email = email.strip()

    async def again(status: int, problem: str, retry_after: int | None = None) -> Response:
        page = await render(
            request, "sign_in.html", status, title="Sign in", next=target or "", email=email, problem=problem
        )
        if retry_after:
            page.headers["Retry-After"] = str(retry_after)
        return page

    try:
        await rate_limit(context, request, "login", email)
    except CedarError as limited:
        retry = int((limited.headers or {}).get("Retry-After", "60"))
        return await again(429, f"Too many attempts. Try again in {retry} seconds.", retry)
    try:
        signed = await run_committed(context, lambda session: identity.sign_in(session, email, password))
    except AuthFailure as failure:
        message = MESSAGES.get(failure.code, failure.detail)
        return await again(FAILURE_STATUS.get(failure.code, 400), message, failure.retry_after)
    remember_session(request, signed)
    new_csrf_seed(request)  # a new session, a new seed: no token from before the sign-in stays valid
    home = HOME.get(Role(signed.role))
    if target or home:
        return redirect(target or home or "/")
    request.scope["state"]["page_user"] = None  # the layout shows no account until the next request
    return await render(
        request,
        "message.html",
        title="You are signed in",
        message="There are no pages for this account yet: use the school's API or the Temporal UI.",
    )


@router.post("/sign-out")
async def sign_out(request: Request, context: ContextDep, identity: IdentityDep) -> Response:
    user = await page_user(request)
    if user is not None:
        access, refresh = session_tokens(request)
        try:
            await run_committed(
                context,
                lambda session: identity.sign_out(
                    session, user.user_id, user.access_token or access, user.session_id, refresh or None
                ),
            )
        except AuthFailure:
            pass  # the session is gone either way; the cookie goes below
    forget_session(request)
    new_csrf_seed(request)
    return redirect("/sign-in?notice=signed_out")
