"""The office's page for closures and teacher changes (plain HTTP, signed in by the session cookie with each
form's CSRF token): it lists what the forms need, and each form calls the same service as the API."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from api.pages.web import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, csrf_for
from api.principal import Principal
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.tokens import issue_access_token
from models import Closure, Lesson, Role, User
from tests.school_api.conftest import future_local
from tests.teacher_changes.conftest import local_day

PAGE = "/office/teacher-changes"


async def _office(sessions: SessionFactory, settings: Settings) -> tuple[dict[str, str], str]:
    """The cookie header of a signed-in admin and the CSRF token their forms carry."""
    async with transaction(sessions) as session:
        user = User(email=f"office-{uuid.uuid4().hex[:8]}@cedar.test", role=Role.admin)
        session.add(user)
    session_id, seed = uuid.uuid4(), "office-seed-" + "x" * 32
    token = issue_access_token(settings, user.id, user.email, Role.admin, session_id)
    principal = Principal(user.id, user.email, Role.admin, session_id=session_id)
    return {"Cookie": f"{SESSION_COOKIE}={token}:; {CSRF_COOKIE}={seed}"}, csrf_for(settings, seed, principal)


async def test_the_office_closes_a_day_and_sees_a_busy_substitute_refused(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
    school_year: Callable[..., Any],
) -> None:
    year_id, _ = await school_year()
    family, other_family = await make_family(), await make_family()
    regular, sub = await make_teacher(), await make_teacher()
    lesson = await add_lesson(regular.teacher, family.students[0], future_local(settings, 4, 16))
    await add_lesson(sub.teacher, other_family.students[0], future_local(settings, 4, 16))
    headers, csrf = await _office(sessions, settings)

    shown = await api.get(PAGE, headers=headers)
    assert shown.status_code == 200, shown.text
    assert regular.teacher.display_name in shown.text
    assert "Close the school" in shown.text

    day = local_day(settings, lesson.starts_at)
    busy = await api.post(
        f"{PAGE}/substitution",
        data={
            CSRF_FIELD: csrf,
            "teacher_id": str(regular.teacher.id),
            "substitute_teacher_id": str(sub.teacher.id),
            "from_date": day,
            "to_date": day,
        },
        headers=headers,
    )
    assert busy.status_code == 409, busy.text
    assert f"lesson {lesson.id}" in busy.text
    async with sessions() as session:
        unchanged = await session.get(Lesson, lesson.id)
        assert unchanged is not None
        assert unchanged.teacher_id == regular.teacher.id

    no_token = await api.post(f"{PAGE}/closure", data={"academic_year_id": year_id}, headers=headers)
    assert no_token.status_code == 403
    form = {
        CSRF_FIELD: csrf,
        "academic_year_id": year_id,
        "start_date": day,
        "end_date": day,
        "reason": "Inspection",
        "lesson_action": "move",
    }
    closed = await api.post(f"{PAGE}/closure", data=form, headers=headers)
    assert closed.status_code == 303, closed.text
    assert closed.headers["location"] == f"{PAGE}?notice=closure_added"
    async with sessions() as session:
        actions = list(
            await session.scalars(select(col(Closure.lesson_action)).where(col(Closure.reason) == "Inspection"))
        )
    assert actions == ["move"]
    bad = await api.post(f"{PAGE}/closure", data={**form, "lesson_action": "shift"}, headers=headers)
    assert bad.status_code == 422
    assert "lesson_action" in bad.text
