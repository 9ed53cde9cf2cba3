"""The page the family-confirmation email links to: ``/confirm-enrollment?enrollment=…&token=…``.

Opening the link changes nothing (mail scanners open links too): the page shows what was asked and two buttons,
whose POST answers through the same function as ``POST /api/v1/enrollments/{id}/family-confirmation``.
"""

from __future__ import annotations

import html
import uuid
from typing import Annotated

from fastapi import Form, Query
from fastapi.responses import HTMLResponse

from api.deps import ContextDep
from api.errors import CedarError
from api.routes.password_pages import html_page
from api.routing import IndexedRouter
from api.services.enrollments import answer_family_confirmation, confirmation_request
from core.contracts.enrollment import FamilyDecision

router = IndexedRouter(include_in_schema=False)
PATH = "/confirm-enrollment"
TITLE = "Confirm an enrollment"

TokenQuery = Annotated[str, Query(min_length=20, max_length=100)]
TokenForm = Annotated[str, Form(min_length=20, max_length=100)]


def _button(enrollment_id: uuid.UUID, token: str, decision: FamilyDecision, label: str) -> str:
    return (
        f'<form method="post" action="{PATH}">'
        f'<input type="hidden" name="enrollment" value="{enrollment_id}">'
        f'<input type="hidden" name="token" value="{html.escape(token, quote=True)}">'
        f'<input type="hidden" name="decision" value="{decision.value}">'
        f'<button type="submit">{html.escape(label)}</button></form>'
    )


@router.get(PATH, response_class=HTMLResponse)
async def confirmation_page(
    enrollment: Annotated[uuid.UUID, Query()], token: TokenQuery, context: ContextDep
) -> HTMLResponse:
    school = context.settings.school_name
    try:
        pending = await confirmation_request(context, enrollment, token)
    except CedarError as refused:
        return html_page(school, "This link no longer works", f"<p>{html.escape(refused.detail)}.</p>", 404)
    application = pending.application
    child = html.escape(str(application.get("student", {}).get("first_name", "")))
    question = (
        f"<p>Someone asked to enroll <strong>{child}</strong> in {html.escape(pending.instrument)} lessons "
        f"({pending.lesson_minutes} minutes) as part of your family. Nothing changes for your family until you "
        "confirm.</p>"
    )
    buttons = _button(enrollment, token, FamilyDecision.confirm, "Yes, enroll them in my family")
    buttons += _button(enrollment, token, FamilyDecision.decline, "No, this was not me")
    return html_page(school, TITLE, question + buttons)


@router.post(PATH, response_class=HTMLResponse)
async def confirmation_answer(
    enrollment: Annotated[uuid.UUID, Form()],
    token: TokenForm,
    decision: Annotated[FamilyDecision, Form()],
    context: ContextDep,
) -> HTMLResponse:
    school = context.settings.school_name
    try:
        await answer_family_confirmation(context, enrollment, token, decision)
    except CedarError as refused:
        return html_page(school, "This link no longer works", f"<p>{html.escape(refused.detail)}.</p>", 409)
    if decision == FamilyDecision.confirm:
        body = "<p>Thank you. The enrollment goes ahead; we will email you the demo lesson's time.</p>"
    else:
        body = "<p>Thank you. The enrollment is cancelled and nothing of your family was changed.</p>"
    return html_page(school, "Answer received", body)
