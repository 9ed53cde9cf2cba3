"""The family's and the teacher's pages show the calendar link with its note, issue it and revoke it (CSRF-checked
forms, the same service as the API): a revoked link is a 404."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx

from api.pages.web import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, csrf_for
from api.principal import Principal
from core.settings import Settings
from core.tokens import issue_access_token
from models import Role
from tests.school_api.conftest import (  # noqa: F401 (fixtures)
    add_lesson,
    future_local,
    make_family,
    make_teacher,
)


def _browser(settings: Settings, user_id: uuid.UUID, email: str, role: Role) -> tuple[dict[str, str], str]:
    """A signed-in browser's cookie header and its forms' CSRF token."""
    session_id = uuid.uuid4()
    token = issue_access_token(settings, user_id, email, role, session_id)
    seed = "feed-seed-" + "y" * 32
    csrf = csrf_for(settings, seed, Principal(user_id, email, role, session_id=session_id))
    return {"Cookie": f"{SESSION_COOKIE}={token}:; {CSRF_COOKIE}={seed}"}, csrf


def _link(page: str) -> str:
    found = re.search(r'id="feed-url" type="url" readonly value="([^"]+)"', page)
    assert found, page
    return "/calendar/" + html.unescape(found.group(1)).split("/calendar/", 1)[1]


async def _walk(api: httpx.AsyncClient, home: str, action: str, cookies: dict[str, str], csrf: str) -> None:
    api.cookies.clear()
    page = await api.get(home, headers=cookies)
    assert page.status_code == 200, page.text
    assert "Get a calendar link" in page.text
    refused = await api.post(action, headers=cookies, data={CSRF_FIELD: "forged"})
    assert refused.status_code == 403

    issued = await api.post(action, headers=cookies, data={CSRF_FIELD: csrf})
    assert issued.status_code == 303
    page = await api.get(issued.headers["location"], headers=cookies)
    assert "Copy this URL into your calendar app" in page.text
    link = _link(page.text)
    feed = await api.get(link)
    assert feed.status_code == 200
    assert feed.text.startswith("BEGIN:VCALENDAR")

    revoked = await api.post(f"{action}/revoke", headers=cookies, data={CSRF_FIELD: csrf})
    assert revoked.status_code == 303
    assert (await api.get(link)).status_code == 404
    page = await api.get(revoked.headers["location"], headers=cookies)
    assert "The calendar link is revoked" in page.text
    assert "Get a calendar link" in page.text


async def test_a_parent_gets_and_revokes_the_family_link_on_the_family_page(
    api: httpx.AsyncClient,
    settings: Settings,
    make_family: Callable[..., Any],  # noqa: F811
    make_teacher: Callable[..., Any],  # noqa: F811
    add_lesson: Callable[..., Any],  # noqa: F811
) -> None:
    family, teacher = await make_family(), await make_teacher()
    await add_lesson(teacher.teacher, family.students[0], future_local(settings, 5, 16))
    cookies, csrf = _browser(settings, family.parent.user_id, family.parent.email, Role.parent)
    await _walk(api, "/family", "/family/calendar-feed", cookies, csrf)


async def test_a_teacher_gets_and_revokes_their_link_on_the_lessons_page(
    api: httpx.AsyncClient,
    settings: Settings,
    make_teacher: Callable[..., Any],  # noqa: F811
) -> None:
    teacher = (await make_teacher()).teacher
    cookies, csrf = _browser(settings, teacher.user_id, teacher.email, Role.teacher)
    await _walk(api, "/teacher", "/teacher/calendar-feed", cookies, csrf)
