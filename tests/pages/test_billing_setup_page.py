"""An imported school's family in the browser: the office invites it from ``/office/billing-setup``, the parent
follows the email's link through the sign-in form to ``/billing/setup``, gives a card in the Stripe Elements form
(localstripe's stand-in for Stripe.js), and each imported lesson is handed to billing once; the family page's
"Billing not set up" goes away, and the page is no one else's."""

from __future__ import annotations

from playwright.async_api import BrowserContext, expect
from sqlalchemy import select
from sqlmodel import col
from temporalio.client import Client

from core.db import SessionFactory
from core.settings import Settings
from devstack.smtp_sink import SmtpSink
from models import BillingAccount, Parent, Subscription
from scripts.import_school import import_school
from tests.pages.conftest import set_password, sign_in
from tests.pages.test_office_pages import make_admin
from tests.school_import.test_import import calendar, sample_school
from tests.waiting import eventually
from workers.main import build_deps, build_worker

HANNAH = "hannah.reyes@example.com"


async def test_the_office_invites_and_the_parent_sets_up_billing_in_the_browser(
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Client,
    served_api: str,
    context: BrowserContext,
    smtp_sink: SmtpSink,
) -> None:
    await calendar(sessions, settings)
    await import_school(settings, sessions, sample_school())
    async with sessions() as session:
        hannah = await session.scalar(select(Parent).where(col(Parent.email) == HANNAH))
    assert hannah is not None
    assert hannah.user_id is not None

    office = await context.new_page()
    admin = await make_admin(sessions)
    await sign_in(office, served_api, admin.email, "/office/billing-setup")
    row = office.get_by_role("row").filter(has_text=HANNAH)
    await expect(row.get_by_role("cell").nth(1)).to_have_text("2")
    await row.get_by_role("button", name="Invite").click()
    await expect(office.get_by_role("status")).to_contain_text("The family is invited")
    await expect(office.get_by_role("row").filter(has_text=HANNAH).get_by_role("button")).to_have_count(0)
    # The office is not the family: the set-up page is a parent's.
    await office.goto(f"{served_api}/billing/setup")
    await expect(office.get_by_role("heading", name="Not for this account")).to_be_visible()

    async def emailed_link() -> str | None:
        key = f"billing-setup-invite:{hannah.id}"
        for message in smtp_sink.messages(to=HANNAH):
            if message["headers"].get("X-Cedar-Dedup-Key") == key:
                return next((w for w in message["text"].split() if w.endswith("/billing/setup")), None)
        return None

    link = await eventually(emailed_link, timeout=30, what="the invitation's set-up link")
    await set_password(sessions, hannah.user_id)  # as the email's set-password link would
    page = await context.new_page()
    async with build_worker(temporal_client, build_deps(settings, sessions, temporal_client)):
        await context.clear_cookies()  # the office signed in on this browser
        await sign_in(page, served_api, HANNAH, link.removeprefix(settings.public_base_url))
        await expect(page.get_by_role("heading", name="Set up billing")).to_be_visible()
        # Until the card is given, the family's page says so and links here.
        await page.goto(f"{served_api}/family")
        await expect(page.get_by_role("heading", name="Billing not set up")).to_be_visible()
        await page.get_by_role("link", name="Set up billing").click()
        await page.wait_for_url(f"{served_api}/billing/setup")
        await expect(page.get_by_role("list", name="Lessons to bill").get_by_role("listitem")).to_have_count(2)
        element = page.locator("#card-element")
        await element.locator('input[placeholder="number"]').fill("4242424242424242")
        await element.locator('input[placeholder="exp_month"]').fill("12")
        await element.locator('input[placeholder="exp_year"]').fill("31")
        await element.locator('input[placeholder="cvc"]').fill("123")
        await element.locator('input[placeholder="postal_code"]').fill("V6B 1A1")
        await page.get_by_role("button", name="Save this card and start billing").click()
        await page.wait_for_url(f"{served_api}/family?notice=billing_set_up")
        await expect(page.get_by_role("status")).to_contain_text("billing is set up")
        await expect(page.get_by_role("heading", name="Billing not set up")).to_have_count(0)

        async def subscriptions() -> list[Subscription]:
            async with sessions() as session:
                rows = await session.scalars(
                    select(Subscription)
                    .join(BillingAccount, col(BillingAccount.id) == col(Subscription.billing_account_id))
                    .where(col(BillingAccount.parent_id) == hannah.id)
                )
                return list(rows.all())

        await eventually(subscriptions, until=lambda s: len(s) == 2, timeout=30, what="both lessons billed")
        # Opened again, the page has nothing left to set up.
        await page.goto(f"{served_api}/billing/setup")
        await expect(page.get_by_text("Billing is set up")).to_be_visible()
    assert len(await subscriptions()) == 2
