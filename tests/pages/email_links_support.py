"""Signing a browser profile in as someone, for the tests that open pages as several people."""

from __future__ import annotations

import re

from playwright.async_api import Browser, BrowserContext

from tests.pages.conftest import PASSWORD


async def signed_in(browser: Browser, base: str, email: str) -> BrowserContext:
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    context.set_default_timeout(30_000)
    page = await context.new_page()
    await page.goto(f"{base}/sign-in")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(re.compile(r"^(?!.*/sign-in)"))
    await page.close()
    return context
