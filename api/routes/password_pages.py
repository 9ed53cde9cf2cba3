"""The pages the emailed links open: ``/set-password?token=…`` and ``/reset-password?token=…``.

A front end at ``public_base_url`` may serve its own; these make the links work on a bare install too. Plain
HTML forms, no script or style, so the API's strict Content-Security-Policy holds; the POST spends the link
through the same identity service as ``/api/v1/auth/set-password`` and ``/password-reset/confirm``.
"""

from __future__ import annotations

import html
from typing import Annotated

from fastapi import Form, Query
from fastapi.responses import HTMLResponse

from api.deps import ContextDep, SettingsDep
from api.routes.auth import IdentityDep, run_committed
from api.routing import IndexedRouter
from core.identity import AuthFailure
from models import TokenPurpose

router = IndexedRouter(include_in_schema=False)
MIN_PASSWORD = 10
PAGES = {
    TokenPurpose.set_password: ("set-password", "Choose your password"),
    TokenPurpose.password_reset: ("reset-password", "Choose a new password"),
}


def html_page(school: str, title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)} — '
        f"{html.escape(school)}</title></head><body><h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
    )


def _form(school: str, purpose: TokenPurpose, token: str, problem: str = "", status: int = 200) -> HTMLResponse:
    path, title = PAGES[purpose]
    warning = f"<p><strong>{html.escape(problem)}</strong></p>" if problem else ""
    return html_page(
        school,
        title,
        f'{warning}<form method="post" action="/{path}">'
        f'<input type="hidden" name="token" value="{html.escape(token, quote=True)}">'
        f"<p><label>Password (at least {MIN_PASSWORD} characters)<br>"
        f'<input type="password" name="password" minlength="{MIN_PASSWORD}" maxlength="256" required '
        'autocomplete="new-password"></label></p><p><button type="submit">Save</button></p></form>',
        status,
    )


async def _spend(
    context: ContextDep, identity: IdentityDep, purpose: TokenPurpose, token: str, password: str
) -> HTMLResponse:
    school = context.settings.school_name
    if not MIN_PASSWORD <= len(password) <= 256:
        return _form(school, purpose, token, f"The password needs {MIN_PASSWORD} to 256 characters.", 422)
    try:
        await run_committed(context, lambda session: identity.set_password(session, token, purpose, password))
    except AuthFailure as failure:
        if failure.code == "weak_password":
            return _form(school, purpose, token, failure.detail, 422)
        return html_page(school, "This link no longer works", f"<p>{html.escape(failure.detail)}</p>", 400)
    return html_page(school, "Password saved", "<p>You can now sign in with your email and this password.</p>")


TokenQuery = Annotated[str, Query(min_length=16, max_length=512)]
TokenForm = Annotated[str, Form(min_length=16, max_length=512)]
PasswordForm = Annotated[str, Form(max_length=1024)]


@router.get("/set-password", response_class=HTMLResponse)
async def set_password_page(token: TokenQuery, settings: SettingsDep) -> HTMLResponse:
    return _form(settings.school_name, TokenPurpose.set_password, token)


@router.post("/set-password", response_class=HTMLResponse)
async def set_password_form(
    token: TokenForm, password: PasswordForm, context: ContextDep, identity: IdentityDep
) -> HTMLResponse:
    return await _spend(context, identity, TokenPurpose.set_password, token, password)


@router.get("/reset-password", response_class=HTMLResponse)
async def reset_password_page(token: TokenQuery, settings: SettingsDep) -> HTMLResponse:
    return _form(settings.school_name, TokenPurpose.password_reset, token)


@router.post("/reset-password", response_class=HTMLResponse)
async def reset_password_form(
    token: TokenForm, password: PasswordForm, context: ContextDep, identity: IdentityDep
) -> HTMLResponse:
    return await _spend(context, identity, TokenPurpose.password_reset, token, password)
