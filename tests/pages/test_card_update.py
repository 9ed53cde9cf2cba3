"""A parent whose renewal was declined signs in, enters a new card in the Stripe Elements form (localstripe's
stand-in for Stripe.js), and sees the past-due invoice paid: the family's dunning ends ``clear`` and a receipt
arrives, exactly as through ``PUT /api/v1/billing/families/{id}/card``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
from playwright.async_api import BrowserContext, expect
from sqlalchemy import select
from sqlmodel import col
from temporalio.client import Client

from core.db import SessionFactory
from core.settings import Settings
from core.stripe import create_stripe_client
from core.temporal import dunning_workflow_id
from devstack.smtp_sink import SmtpSink
from models import Communication, Invoice, Role
from tests.billing.conftest import billed_family
from tests.pages.conftest import set_password, sign_in
from tests.waiting import eventually
from workers.main import build_deps, build_worker

ATTACHES_THEN_DECLINES = "4000000000000341"


async def test_a_declined_family_updates_its_card_in_the_browser_and_the_invoice_is_paid(
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Client,
    served_api: str,
    auth_headers: Callable[..., Any],
    context: BrowserContext,
    smtp_sink: SmtpSink,
) -> None:
    stripe_client = create_stripe_client(settings)
    async with build_worker(temporal_client, build_deps(settings, sessions, temporal_client)):
        billed = await billed_family(sessions, settings, temporal_client, stripe_client, ATTACHES_THEN_DECLINES)
        family = billed.family
        await set_password(sessions, family.user_id)
        admin = await auth_headers(Role.admin)
        async with httpx.AsyncClient(base_url=served_api, timeout=30) as http:
            renewal = await http.post(f"/api/v1/billing/subscriptions/{billed.subscription.id}/renewals", headers=admin)
        assert renewal.status_code == 201, renewal.text
        stripe_invoice_id = renewal.json()["stripe_invoice_id"]

        async def past_due() -> Invoice | None:
            async with sessions() as session:
                row = await session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == stripe_invoice_id))
            return row if row is not None and row.first_failed_at is not None else None

        await eventually(past_due, what="the renewal's failed payment")
        dunning = temporal_client.get_workflow_handle(dunning_workflow_id(family.parent_id))

        # The failed-payment email's own link: the card page, through the sign-in form.
        async def emailed_card_link() -> str | None:
            for message in smtp_sink.messages(to=family.email):
                for word in message["text"].split():
                    if word.startswith(settings.public_base_url) and word.rstrip(".").endswith("/family/card"):
                        return word.rstrip(".")
            return None

        link = await eventually(emailed_card_link, timeout=30, what="the failed-payment email's card link")
        page = await context.new_page()
        await sign_in(page, served_api, family.email, link.removeprefix(settings.public_base_url))
        await expect(page.get_by_role("heading", name="Update your card")).to_be_visible()
        element = page.locator("#card-element")
        await element.locator('input[placeholder="number"]').fill("4242424242424242")
        await element.locator('input[placeholder="exp_month"]').fill("12")
        await element.locator('input[placeholder="exp_year"]').fill("31")
        await element.locator('input[placeholder="cvc"]').fill("123")
        await element.locator('input[placeholder="postal_code"]').fill("V6B 1A1")
        await page.get_by_role("button", name="Save this card").click()
        await page.wait_for_url(f"{served_api}/family?notice=card_saved")
        await expect(page.get_by_role("status")).to_contain_text("Your new card is saved")

        async def shows_paid() -> bool:
            await page.reload()
            return await page.get_by_role("cell", name="Paid", exact=True).count() == 1

        await eventually(shows_paid, timeout=30, what="the invoice shown paid on the family's page")
        await expect(page.get_by_text("A payment did not go through")).to_have_count(0)
        assert await eventually(dunning.result, timeout=30, what="dunning to end") == "clear"

        async def receipts() -> list[dict[str, Any]]:
            mail = smtp_sink.messages(to=family.email)
            return [m for m in mail if m["subject"].startswith("Receipt:")]

        [receipt] = await eventually(receipts, timeout=20, what="the receipt email")
        assert f"{settings.public_base_url}/family" in receipt["text"].split()
        # The page links the receipt: it opens, for this family only.
        await page.get_by_role("link", name="Receipt").click()
        await expect(page.get_by_role("heading", name="Receipt")).to_be_visible()

    async with sessions() as session:
        invoice = await session.scalar(select(Invoice).where(Invoice.stripe_invoice_id == stripe_invoice_id))
        sent = list(
            await session.scalars(
                select(col(Communication.template)).where(
                    col(Communication.parent_id) == family.parent_id, col(Communication.status) == "sent"
                )
            )
        )
    assert invoice is not None
    assert invoice.status == "paid"
    assert "billing_receipt" in sent
    assert "dunning_payment_failed" in sent
