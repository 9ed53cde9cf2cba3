"""A signed-in parent enrolls a brother or sister from the family's page: the card goes through the Elements form,
the enrollment goes straight ahead (no confirmation email), and the welcome email's link opens its status page."""

from __future__ import annotations

import re
import uuid
from datetime import date

import httpx
from playwright.async_api import BrowserContext, expect
from sqlmodel import col

from core.db import SessionFactory
from devstack.smtp_sink import SmtpSink
from models import Parent, Student
from tests.enrollment.conftest import EnrollmentWorker
from tests.enrollment.helpers import count_rows, enroll, enrollment_row, mail_of, wait_for_state
from tests.pages.conftest import set_password, sign_in


async def test_a_signed_in_parent_enrolls_a_sibling_from_the_page(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
    served_api: str,
    context: BrowserContext,
) -> None:
    async with enrollment_worker():
        first = await enroll(api)
        await wait_for_state(api, first, "demo_scheduled")
        parent_id = (await enrollment_row(sessions, first)).parent_id
        async with sessions() as session:
            parent = await session.get(Parent, parent_id)
        assert parent is not None
        assert parent.user_id is not None
        await set_password(sessions, parent.user_id)

        page = await context.new_page()
        await sign_in(page, served_api, parent.email, "/family/enroll")
        await page.get_by_label("First name").fill("Bea")
        await page.get_by_label("Last name").fill("Okafor")
        await page.get_by_label("Date of birth").fill(f"{date.today().year - 8}-05-02")
        await page.get_by_label("Instrument").select_option("piano")
        await page.get_by_label("Lesson length").select_option("45")
        await page.get_by_label("Weekly", exact=True).check()
        for row, weekday in ((1, "0"), (2, "2"), (3, "4")):  # Monday, Wednesday, Friday
            await page.locator(f"#weekday-{row}").select_option(weekday)
            await page.locator(f"#start-{row}").fill("08:00")
            await page.locator(f"#end-{row}").fill("21:00")
        await page.get_by_label("I accept the school's privacy policy").check()
        card = page.locator("#card-element")
        for field, value in (("number", "4242424242424242"), ("exp_month", "11"), ("exp_year", "32"), ("cvc", "321")):
            await card.locator(f'input[placeholder="{field}"]').fill(value)
        await page.get_by_role("button", name="Enroll").click()
        await page.wait_for_url(re.compile(r"/enrollments/[0-9a-f-]{36}$"))
        sibling = page.url.rsplit("/", 1)[1]
        await expect(page.get_by_role("heading", name="Your enrollment")).to_be_visible()
        await expect(page.get_by_text("Piano, 45 minutes")).to_be_visible()

        await wait_for_state(api, sibling, "demo_scheduled")
        mail = await mail_of(smtp_sink, sibling, {"welcome-parent"})
        assert "confirm-family" not in mail  # the signed-in parent's own act needs no confirmation
        [welcome] = mail["welcome-parent"]
        link = next(word for word in welcome["text"].split() if f"/enrollments/{sibling}" in word)
        assert link.endswith(f"/enrollments/{sibling}")
        assert "/api/" not in link
        status = await page.goto(f"{served_api}/enrollments/{sibling}")
        assert status is not None
        assert status.status == 200
        await expect(page.get_by_text("Now: Demo lesson booked")).to_be_visible()

    enrollment = await enrollment_row(sessions, sibling)
    assert enrollment.parent_id == parent_id
    assert enrollment.billing_interval == "week"
    assert enrollment.lesson_minutes == 45
    assert enrollment.stripe_payment_method_id
    assert enrollment.stripe_payment_method_id.startswith("pm_")
    assert await count_rows(sessions, Student, col(Student.parent_id) == parent_id) == 2
    uuid.UUID(sibling)
