"""A family's re-enrollment page, ``/re-enroll/{semester_id}`` (the offer email's link): each child's offered
weekly lesson next semester in the school's local time, with Yes / No buttons until the deadline.

The signed-in parent is the principal: the page reads and answers through the services of
``GET /api/v1/reenrollments/{id}`` and ``POST /api/v1/reenrollments/{id}/answers``, so another family's offers are
a 404 here too.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import CedarError
from api.pages.web import NOTICES, ParentUser, page_router, redirect, render
from api.principal import Principal
from api.schemas.reenrollments import AnswerIn, AnswersIn
from api.services import reenrollments as service
from core.contracts.reenrollment import reenrollment_workflow_id
from core.page_links import reenrollment_path
from core.settings import Settings
from domain.local_time import format_local

router = page_router()
NOTICES["reenrollment_answered"] = "Thank you: your answer is saved. You can change it until the deadline."
ANSWERS = {"returning": "Returning", "not_returning": "Not returning", "not_answered": "Not answered yet"}


def _time(at: Any) -> str:
    hour = at.hour % 12 or 12
    return f"{hour}:{at.minute:02d} {'AM' if at.hour < 12 else 'PM'}"


async def _page(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    user: Principal,
    semester_id: uuid.UUID,
    problem: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    assert user.parent_id is not None
    view = await service.family_view(session, user, reenrollment_workflow_id(user.parent_id, semester_id))
    children = [
        {
            "enrollment_id": offer["enrollment_id"],
            "name": offer["student_first_name"],
            "instrument": offer["instrument"],
            "teacher": offer["teacher_display_name"],
            "when": f"{offer['weekday_name']}s at {_time(offer['local_time'])}",
            "minutes": offer["lesson_minutes"],
            "moved": not offer["same_as_now"],
            "answer": ANSWERS[offer["answer"]],
        }
        for offer in view["offers"]
    ]
    return await render(
        request,
        "reenrollment.html",
        status,
        title=f"Lessons in {view['next_semester_name']}",
        semester_id=semester_id,
        deadline=format_local(view["deadline"], settings.timezone),
        is_open=view["open"],
        default_returns=view["default"] == "return",
        children=children,
        problem=problem,
    )


@router.get("/re-enroll/{semester_id}")
async def reenrollment_page(
    request: Request, semester_id: uuid.UUID, user: ParentUser, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    return await _page(request, session, settings, user, semester_id)


@router.post("/re-enroll/{semester_id}")
async def answer_offer(
    request: Request,
    semester_id: uuid.UUID,
    user: ParentUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    enrollment_id: Annotated[uuid.UUID, Form()],
    returning: Annotated[bool, Form()],
) -> Response:
    """One child's answer through the answers service; after the deadline (409) the page says so."""
    assert user.parent_id is not None
    body = AnswersIn(answers=[AnswerIn(enrollment_id=enrollment_id, returning=returning)])
    try:
        reenrollment_id = reenrollment_workflow_id(user.parent_id, semester_id)
        await service.answer(session, temporal, settings, user, reenrollment_id, body)
    except CedarError as refused:
        if refused.status_code != 409:
            raise
        await session.rollback()
        return await _page(request, session, settings, user, semester_id, f"Not saved: {refused.detail}.", 409)
    return redirect(f"{reenrollment_path(semester_id)}?notice=reenrollment_answered")
