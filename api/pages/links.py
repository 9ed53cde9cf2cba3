"""The pages emailed links open without signing in.

- ``/set-password?token=…`` and ``/reset-password?token=…``: a form whose POST spends the link through the same
  identity service as ``/api/v1/auth/set-password`` and ``/password-reset/confirm``. (A front end at
  ``public_base_url`` may serve its own; these make the links work on a bare install.)
- ``/confirm-enrollment?enrollment=…&token=…``: opening it changes nothing (mail scanners open links too); its two
  buttons answer through the same function as ``POST /api/v1/enrollments/{id}/family-confirmation``.
- ``/enrollments/{id}``: the welcome email's "follow the enrollment", the same non-personal fields as
  ``GET /api/v1/enrollments/{id}`` (states, times, instrument, the teacher's display name), for anyone holding the
  unguessable id.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse

from api.deps import ContextDep, IdentityDep
from api.errors import CedarError
from api.pages.web import page_router, page_user, render, sentence
from api.routes.auth import run_committed
from api.services.enrollments import answer_family_confirmation, confirmation_request, progress
from core.contracts.enrollment import FamilyDecision
from core.identity import AuthFailure
from domain.local_time import format_local
from models import Role, TokenPurpose

router = page_router()
MIN_PASSWORD = 10
PASSWORD_PAGES = {
    TokenPurpose.set_password: ("/set-password", "Choose your password"),
    TokenPurpose.password_reset: ("/reset-password", "Choose a new password"),
}
CONFIRM_PATH = "/confirm-enrollment"
GONE = "This link no longer works"

PasswordTokenQuery = Annotated[str, Query(min_length=16, max_length=512)]
PasswordTokenForm = Annotated[str, Form(min_length=16, max_length=512)]
PasswordForm = Annotated[str, Form(max_length=1024)]
ConfirmTokenQuery = Annotated[str, Query(min_length=20, max_length=100)]
ConfirmTokenForm = Annotated[str, Form(min_length=20, max_length=100)]


# --- passwords ---


async def _password_form(
    request: Request, purpose: TokenPurpose, token: str, problem: str | None = None, status: int = 200
) -> HTMLResponse:
    action, title = PASSWORD_PAGES[purpose]
    return await render(
        request,
        "password.html",
        status,
        title=title,
        action=action,
        token=token,
        min_password=MIN_PASSWORD,
        problem=problem,
    )


async def _spend(
    request: Request, context: ContextDep, identity: IdentityDep, purpose: TokenPurpose, token: str, password: str
) -> HTMLResponse:
    if not MIN_PASSWORD <= len(password) <= 256:
        return await _password_form(
            request, purpose, token, f"The password needs {MIN_PASSWORD} to 256 characters.", 422
        )
    try:
        await run_committed(context, lambda session: identity.set_password(session, token, purpose, password))
    except AuthFailure as failure:
        if failure.code == "weak_password":
            return await _password_form(request, purpose, token, failure.detail, 422)
        return await render(request, "message.html", 400, title=GONE, message=failure.detail)
    return await render(
        request,
        "message.html",
        title="Password saved",
        message="You can now sign in with your email and this password.",
        link=("/sign-in", "Sign in"),
    )


@router.get("/set-password")
async def set_password_page(request: Request, token: PasswordTokenQuery) -> HTMLResponse:
    return await _password_form(request, TokenPurpose.set_password, token)


@router.post("/set-password")
async def set_password_form(
    request: Request, token: PasswordTokenForm, password: PasswordForm, context: ContextDep, identity: IdentityDep
) -> HTMLResponse:
    return await _spend(request, context, identity, TokenPurpose.set_password, token, password)


@router.get("/reset-password")
async def reset_password_page(request: Request, token: PasswordTokenQuery) -> HTMLResponse:
    return await _password_form(request, TokenPurpose.password_reset, token)


@router.post("/reset-password")
async def reset_password_form(
    request: Request, token: PasswordTokenForm, password: PasswordForm, context: ContextDep, identity: IdentityDep
) -> HTMLResponse:
    return await _spend(request, context, identity, TokenPurpose.password_reset, token, password)


# --- an existing family's confirmation of an enrollment ---


@router.get(CONFIRM_PATH)
async def confirmation_page(
    request: Request, enrollment: Annotated[uuid.UUID, Query()], token: ConfirmTokenQuery, context: ContextDep
) -> HTMLResponse:
    try:
        pending = await confirmation_request(context, enrollment, token)
    except CedarError as refused:
        return await render(request, "message.html", 404, title=GONE, message=sentence(refused.detail))
    child = str(pending.application.get("student", {}).get("first_name", ""))
    return await render(
        request,
        "confirm_enrollment.html",
        title="Confirm an enrollment",
        enrollment_id=enrollment,
        token=token,
        child=child,
        instrument=pending.instrument,
        lesson_minutes=pending.lesson_minutes,
        confirm=FamilyDecision.confirm.value,
        decline=FamilyDecision.decline.value,
    )


@router.post(CONFIRM_PATH)
async def confirmation_answer(
    request: Request,
    enrollment: Annotated[uuid.UUID, Form()],
    token: ConfirmTokenForm,
    decision: Annotated[FamilyDecision, Form()],
    context: ContextDep,
) -> HTMLResponse:
    try:
        await answer_family_confirmation(context, enrollment, token, decision)
    except CedarError as refused:
        return await render(request, "message.html", 409, title=GONE, message=sentence(refused.detail))
    if decision == FamilyDecision.confirm:
        message = "Thank you. The enrollment goes ahead; we will email you the demo lesson's time."
    else:
        message = "Thank you. The enrollment is cancelled and nothing of your family was changed."
    return await render(request, "message.html", title="Answer received", message=message)


# --- an enrollment's progress ---

STATE_LABELS = {
    "received": "Application received",
    "validated": "Application checked",
    "awaiting_confirmation": "Waiting for the family's confirmation",
    "account_created": "Family account ready",
    "teacher_assigned": "Teacher assigned",
    "demo_scheduled": "Demo lesson booked",
    "waitlisted": "On the waiting list",
    "awaiting_outcome": "Demo lesson held; waiting for the teacher",
    "active": "Weekly lessons booked",
    "withdrawn": "Withdrawn",
    "cancelled": "Cancelled",
    "failed": "Could not go ahead",
}


@router.get("/enrollments/{enrollment_id}")
async def enrollment_status_page(request: Request, enrollment_id: uuid.UUID, context: ContextDep) -> HTMLResponse:
    settings = context.settings
    async with context.read_sessions() as session:
        found = await progress(session, context.temporal, settings, enrollment_id)
    view, enrollment = found.view, found.enrollment
    demo_at = view.demo_starts_at.astimezone(settings.timezone) if view.demo_starts_at else None
    user = await page_user(request)
    return await render(
        request,
        "enrollment_status.html",
        title="Your enrollment",
        state=STATE_LABELS.get(view.state, view.state.replace("_", " ").capitalize()),
        steps=[(STATE_LABELS.get(s.state, s.state), format_local(s.at, settings.timezone)) for s in view.steps],
        instrument=enrollment.instrument,
        lesson_minutes=enrollment.lesson_minutes,
        teacher=found.teacher.display_name if found.teacher else None,
        demo_at=format_local(demo_at, settings.timezone) if demo_at else None,
        failure_reason=view.failure_reason,
        family_home=user is not None and user.role == Role.parent,
    )
