"""The README's tour, in pictures: with ``CEDAR_SCREENSHOTS`` set to an absolute folder, e.g.
``CEDAR_SCREENSHOTS=$PWD/docs/screenshots ./cedar test tests/pages/test_tour_screenshots.py``, each page of the tour
(sign in, a family's home and card page, a teacher's demos, the office's lists) is saved as the phone-sized Chromium
of the page tests shows it. Without the variable the test still opens each page and checks it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Browser, Page

from core.db import SessionFactory
from core.settings import Settings
from core.stripe import create_stripe_client
from models import Enrollment, Role, Teacher
from tests.billing.conftest import card
from tests.enrollment.helpers import application, wait_for_state
from tests.pages.conftest import set_password
from tests.pages.email_links_support import signed_in
from workers.main import build_deps, build_worker


async def _shot(page: Page, name: str) -> None:
    folder = os.environ.get("CEDAR_SCREENSHOTS")
    assert await page.locator("main h1").count() == 1
    if folder:
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


async def test_the_tour_pages(
    demo_data: None,
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Any,
    served_api: str,
    auth_headers: Callable[..., Any],
    browser: Browser,
) -> None:
    stripe_client = create_stripe_client(settings)
    async with (
        build_worker(temporal_client, build_deps(settings, sessions, temporal_client)),
        httpx.AsyncClient(base_url=served_api, timeout=30) as http,
    ):
        for child in ("Leo", "Mia"):
            body = application(payment_method_id=await card(stripe_client))
            body["student"]["first_name"] = child
            created = await http.post("/api/v1/enrollments", json=body)
            enrollment_id = created.json()["enrollment_id"]
            await wait_for_state(http, enrollment_id, "demo_scheduled", timeout=30)
        async with sessions() as session:
            enrollment = await session.get(Enrollment, uuid.UUID(enrollment_id))
            assert enrollment is not None
            teacher = await session.get(Teacher, enrollment.teacher_id)
            parent = enrollment.parent_id
        assert teacher is not None
        assert teacher.user_id is not None
        assert parent is not None
        admin = await auth_headers(Role.admin)
        await http.post(
            f"/api/v1/enrollments/{enrollment_id}/demo-outcome", json={"outcome": "continue"}, headers=admin
        )
        await wait_for_state(http, enrollment_id, "active", timeout=30)

        anonymous = await browser.new_context(viewport={"width": 390, "height": 844})
        page = await anonymous.new_page()
        await page.goto(f"{served_api}/sign-in")
        await _shot(page, "sign-in")
        await anonymous.close()

        async with sessions() as session:
            from models import Parent

            family = await session.get(Parent, parent)
        assert family is not None
        assert family.user_id is not None
        await set_password(sessions, family.user_id)
        context = await signed_in(browser, served_api, family.email)
        page = await context.new_page()
        await page.goto(f"{served_api}/family")
        await _shot(page, "family-home")
        await page.goto(f"{served_api}/family/card")
        await _shot(page, "family-card")
        await context.close()

        await set_password(sessions, teacher.user_id)
        context = await signed_in(browser, served_api, teacher.email)
        page = await context.new_page()
        await page.goto(f"{served_api}/teacher/demos")
        await _shot(page, "teacher-demos")
        await context.close()

        from tests.pages.test_office_pages import make_admin

        office = await make_admin(sessions)
        context = await signed_in(browser, served_api, office.email)
        page = await context.new_page()
        await page.goto(f"{served_api}/office/enrollments?view=outcome")
        await _shot(page, "office-enrollments")
        await page.goto(f"{served_api}/office/arrears")
        await _shot(page, "office-arrears")
        await context.close()
