"""In the browser: the offer email's link opens the family's re-enrollment page, which shows each child's offered
lesson in local time and saves a Yes / No; another family gets a 404."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import Browser, BrowserContext, expect

from core.contracts.reenrollment import reenrollment_workflow_id
from core.db import SessionFactory
from core.settings import Settings
from devstack.smtp_sink import SmtpSink
from models import Role
from tests.billing.conftest import make_family, served_api  # noqa: F401 (served_api: the app over HTTP)
from tests.pages.conftest import browser, context, set_password, sign_in  # noqa: F401 (fixtures and helpers)
from tests.school_year.conftest import SchoolYearWorker
from tests.school_year.test_reenrollment import AuthHeaders, _family, _offers, _semester_happened
from tests.waiting import eventually


async def test_a_parent_answers_from_the_emailed_page(
    api: httpx.AsyncClient,
    demo_data: None,
    school_year_worker: SchoolYearWorker,
    sessions: SessionFactory,
    settings: Settings,
    smtp_sink: SmtpSink,
    auth_headers: AuthHeaders,
    served_api: str,  # noqa: F811
    context: BrowserContext,  # noqa: F811
    browser: Browser,  # noqa: F811
) -> None:
    admin = await auth_headers(Role.admin)
    async with school_year_worker():
        (first, second), parent, parent_headers = await _family(api, sessions, auth_headers, 2)
        fall, _ = await _semester_happened(sessions, settings, [first, second])
        deadline = datetime.now(UTC) + timedelta(minutes=5)
        opened = await api.post(
            f"/api/v1/semesters/{fall.id}/reenrollment", json={"deadline": deadline.isoformat()}, headers=admin
        )
        assert opened.status_code == 202, opened.text
        reenrollment_id = reenrollment_workflow_id(parent.id, fall.id)
        view = await _offers(api, reenrollment_id, parent_headers, 2)
        [offer_mail] = await eventually(
            lambda: _mail(smtp_sink, f"reenrollment:{parent.id}:{fall.id}:offer"), what="the offer email"
        )
        link = next(word for word in offer_mail["text"].split() if "/re-enroll/" in word)
        path = link.split("://", 1)[1].split("/", 1)[1]
        assert f"/{path}" == f"/re-enroll/{fall.id}"

        assert parent.user_id is not None
        await set_password(sessions, parent.user_id)
        page = await context.new_page()
        await sign_in(page, served_api, parent.email, f"/re-enroll/{fall.id}")
        for offer in view["offers"]:
            hour, minute = int(offer["local_time"][:2]), offer["local_time"][3:5]
            when = f"{offer['weekday_name']}s at {hour % 12 or 12}:{minute} {'AM' if hour < 12 else 'PM'}"
            await expect(page.get_by_text(when)).to_be_visible()
        leaving = next(o for o in view["offers"] if o["enrollment_id"] == second)
        await page.get_by_role("button", name=f"{leaving['student_first_name']} is not returning").click()
        await expect(page.get_by_text("Thank you: your answer is saved")).to_be_visible()
        await expect(page.get_by_text("Not returning")).to_be_visible()
        # The family's home page leads there too, with what is left to answer.
        await page.goto(f"{served_api}/family")
        await expect(page.get_by_text("1 child still to answer")).to_be_visible()
        await page.get_by_role("link", name="Answer for next semester").click()
        await expect(page).to_have_url(f"{served_api}/re-enroll/{fall.id}")
        answered = await api.get(f"/api/v1/reenrollments/{reenrollment_id}", headers=parent_headers)
        assert {o["enrollment_id"]: o["answer"] for o in answered.json()["offers"]} == {
            first: "not_answered",
            second: "not_returning",
        }

        # Another family's parent: the page and the API answer 404.
        other = await make_family(sessions)
        await set_password(sessions, other.user_id)
        their_context = await browser.new_context()
        their_page = await their_context.new_page()
        await sign_in(their_page, served_api, other.email, "/family")
        response = await their_page.goto(f"{served_api}/re-enroll/{fall.id}")
        assert response is not None
        assert response.status == 404
        await their_context.close()
        other_headers = await auth_headers(Role.parent, user_id=other.user_id)
        assert (await api.get(f"/api/v1/reenrollments/{reenrollment_id}", headers=other_headers)).status_code == 404


async def _mail(smtp_sink: SmtpSink, key: str) -> list[dict]:
    return [m for m in smtp_sink.messages() if m["headers"].get("X-Cedar-Dedup-Key", "").strip() == key]
