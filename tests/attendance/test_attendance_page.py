"""The teacher's page marks attendance through CSRF-protected forms on this week's lessons that have started."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from core.db import SessionFactory
from core.settings import Settings
from models import Lesson
from tests.pages.conftest import PASSWORD, set_password
from tests.school_api.conftest import future_local


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None
    return found.group(1)


async def test_the_teacher_marks_a_started_lesson_from_their_page(
    settings: Settings,
    sessions: SessionFactory,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    from api.main import create_app

    family, teacher = await make_family(), await make_teacher()
    now = datetime.now(UTC)
    started = await add_lesson(teacher.teacher, family.students[0], now - timedelta(minutes=20))
    ahead = await add_lesson(teacher.teacher, family.students[0], future_local(settings, 14, 16))
    await set_password(sessions, teacher.teacher.user_id)
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://cedar.test") as client:
            form = await client.get("/sign-in")
            signed = await client.post(
                "/sign-in",
                data={
                    "csrf_token": _csrf(form.text),
                    "next": "/teacher",
                    "email": teacher.teacher.email,
                    "password": PASSWORD,
                },
            )
            assert signed.status_code == 303, signed.text
            page = await client.get("/teacher")
            assert page.status_code == 200
            assert f'action="/teacher/lessons/{started.id}/attendance"' in page.text
            assert f"/teacher/lessons/{ahead.id}/attendance" not in page.text  # not started (and not this week)
            token = _csrf(page.text)

            forged = await client.post(
                f"/teacher/lessons/{started.id}/attendance", data={"attendance": "late", "csrf_token": "0" * 64}
            )
            assert forged.status_code == 403
            marked = await client.post(
                f"/teacher/lessons/{started.id}/attendance", data={"attendance": "late", "csrf_token": token}
            )
            assert marked.status_code == 303
            assert marked.headers["location"].endswith("notice=attendance_recorded")
            refused = await client.post(
                f"/teacher/lessons/{ahead.id}/attendance", data={"attendance": "present", "csrf_token": token}
            )
            assert refused.status_code == 409
            assert "started" in refused.text

    async with sessions() as session:
        row = await session.get(Lesson, started.id)
        ahead_row = await session.get(Lesson, ahead.id)
    assert row is not None
    assert ahead_row is not None
    assert (row.status, row.attendance) == ("completed", "late")
    assert (ahead_row.status, ahead_row.attendance) == ("scheduled", None)
