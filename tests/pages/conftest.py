"""The page tests' harness: real Chromium (Debian's, driven by Playwright) against the real app served over HTTP,
with localstripe, Temporal and the SMTP sink of the suite.

A missing browser FAILS these tests with what to do, never skips them: ``./cedar test`` installs Debian's chromium
when it can (root with apt-get, as in CI).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright
from sqlalchemy import update

from core.db import SessionFactory, transaction
from core.passwords import hash_password
from models import User
from tests.billing.conftest import served_api  # noqa: F401 (the real app over HTTP, a fixture)

CHROMIUM = Path(os.environ.get("CEDAR_CHROMIUM", "/usr/bin/chromium"))
PASSWORD = "a family's own password 7"


def _installed(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not _installed(CHROMIUM):
        pytest.fail(
            f"the page tests need Chromium at {CHROMIUM}: run them with ./cedar test (as root it installs Debian's "
            "chromium), or `apt-get install chromium`, or set CEDAR_CHROMIUM to a Chromium binary"
        )
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh browser profile (no cookies) with a phone-sized window, for one test."""
    made = await browser.new_context(viewport={"width": 390, "height": 844})
    made.set_default_timeout(30_000)
    yield made
    await made.close()


async def set_password(sessions: SessionFactory, user_id: uuid.UUID) -> None:
    async with transaction(sessions) as session:
        await session.execute(update(User).where(User.id == user_id).values(password_hash=hash_password(PASSWORD)))


async def sign_in(page: Page, base: str, email: str, path: str = "/family") -> None:
    """Open ``path`` signed out, get sent to the sign-in form, sign in, and land back on ``path``."""
    await page.goto(f"{base}{path}")
    await page.wait_for_url(re.compile(r"/sign-in\?next="))
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.get_by_role("button", name="Sign in").click()
    await page.wait_for_url(f"{base}{path}")


@dataclass(frozen=True)
class Cookie:
    name: str
    value: str


async def cookie(context: BrowserContext, name: str) -> Cookie | None:
    for found in await context.cookies():
        if found.get("name") == name:
            return Cookie(name, str(found.get("value", "")))
    return None
