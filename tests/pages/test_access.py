"""In the browser, a signed-in parent reaches only their own family: another family's receipt or lesson is a
404, a form without its CSRF token is refused, and the session cookie is worthless once they sign out."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
from playwright.async_api import BrowserContext, expect
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory, transaction
from models import BillingAccount, Consent, Lesson, Payment
from tests.billing.conftest import Family, make_family
from tests.pages.conftest import cookie, set_password, sign_in

SESSION = "cedar_session"


async def _lesson(sessions: SessionFactory, family: Family, days: int) -> uuid.UUID:
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(days=days)
    async with transaction(sessions) as session:
        lesson = Lesson(
            kind="regular",
            teacher_id=family.teacher_id,
            student_id=family.student_ids[0],
            starts_at=at,
            ends_at=at + timedelta(minutes=30),
        )
        session.add(lesson)
    return lesson.id


async def _payment(sessions: SessionFactory, family: Family) -> uuid.UUID:
    async with transaction(sessions) as session:
        account = BillingAccount(
            parent_id=family.parent_id,
            stripe_customer_id=f"cus_pages_{uuid.uuid4().hex[:10]}",
            workflow_id=f"family-billing-{family.parent_id}",
        )
        session.add(account)
        await session.flush()
        payment = Payment(billing_account_id=account.id, status="succeeded", amount_minor=14000)
        session.add(payment)
    return payment.id


async def test_a_parent_reaches_only_their_family_and_their_session_ends_with_sign_out(
    sessions: SessionFactory, served_api: str, context: BrowserContext
) -> None:
    mine, theirs = await make_family(sessions), await make_family(sessions)
    await set_password(sessions, mine.user_id)
    my_lesson = await _lesson(sessions, mine, days=5)
    their_lesson = await _lesson(sessions, theirs, days=5)
    my_payment, their_payment = await _payment(sessions, mine), await _payment(sessions, theirs)

    page = await context.new_page()
    await sign_in(page, served_api, mine.email)
    await expect(page.get_by_role("heading", name="Your family")).to_be_visible()

    # Their receipt is not found; mine opens.
    other = await page.goto(f"{served_api}/family/payments/{their_payment}")
    assert other is not None
    assert other.status == 404
    await expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    own = await page.goto(f"{served_api}/family/payments/{my_payment}")
    assert own is not None
    assert own.status == 200
    await expect(page.get_by_text("$140.00")).to_be_visible()

    # Their lesson cannot be cancelled, even with my valid form token; mine can, from the page.
    token = await page.locator('input[name="csrf_token"]').first.get_attribute("value")
    assert token
    refused = await page.request.post(f"{served_api}/family/lessons/{their_lesson}/cancel", form={"csrf_token": token})
    assert refused.status == 404
    await page.goto(f"{served_api}/family")
    await page.get_by_role("button", name=re.compile("Cancel the lesson")).click()
    await page.wait_for_url(f"{served_api}/family?notice=lesson_cancelled_credit")
    await expect(page.get_by_role("status")).to_have_text(
        "The lesson is cancelled; you earned a make-up credit (below)."
    )
    async with sessions() as session:
        statuses: dict[uuid.UUID, str] = dict(
            (await session.execute(select(col(Lesson.id), col(Lesson.status)))).tuples().all()
        )
    assert statuses[my_lesson] == "cancelled"
    assert statuses[their_lesson] == "scheduled"

    # A form without its CSRF token (what another site's form would send) is refused; with it, accepted.
    consent: dict[str, str | float | bool] = {"kind": "marketing_email", "granted": "true"}
    forged = await page.request.post(f"{served_api}/family/consents", form=consent, max_redirects=0)
    assert forged.status == 403
    wrong = await page.request.post(
        f"{served_api}/family/consents", form={**consent, "csrf_token": "0" * 64}, max_redirects=0
    )
    assert wrong.status == 403
    async with sessions() as session:
        assert (await session.scalar(select(Consent).where(col(Consent.parent_id) == mine.parent_id))) is None
    accepted = await page.request.post(
        f"{served_api}/family/consents", form={**consent, "csrf_token": token}, max_redirects=0
    )
    assert accepted.status == 303
    assert accepted.headers["location"].startswith("/family/privacy")

    # Sign out: the cookie the browser held is refused afterwards, here and in any other browser.
    before = await cookie(context, SESSION)
    assert before is not None
    assert before.value
    await page.get_by_role("button", name=re.compile("Sign out")).click()
    await page.wait_for_url(f"{served_api}/sign-in?notice=signed_out")
    await expect(page.get_by_role("status")).to_have_text("You are signed out.")
    assert await cookie(context, SESSION) is None
    async with httpx.AsyncClient(base_url=served_api) as replay:
        answer = await replay.get("/family", headers={"Cookie": f"{SESSION}={before.value}"})
    assert answer.status_code == 303
    assert answer.headers["location"] == "/sign-in?next=/family"
    await context.add_cookies([{"name": SESSION, "value": before.value, "url": served_api}])
    await page.goto(f"{served_api}/family")
    await page.wait_for_url(re.compile(r"/sign-in\?next=/family$"))
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()
