"""The office lists enrollments by state, and pauses and resumes a family in arrears from its page, through the
same service and audit log as ``POST /api/v1/dunning/families/{id}/pause`` and ``/resume``."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import BrowserContext, expect
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory, transaction
from core.passwords import hash_password
from core.settings import Settings
from models import AuditLog, BillingAccount, Invoice, Role, User
from tests.dunning.conftest import DunningKit, failure, kit  # noqa: F401 (a fixture)
from tests.pages.conftest import PASSWORD, sign_in
from tests.waiting import eventually


@pytest.fixture
def dunning_settings(make_settings: Callable[..., Settings]) -> Settings:
    """Dunning that stays where the office leaves it for the test's length: warnings an hour away."""
    return make_settings(
        dunning_warning_after=timedelta(hours=1),
        dunning_suspend_after=timedelta(hours=2),
        dunning_cancel_after=timedelta(hours=3),
        dunning_retry_offsets=[timedelta(minutes=30)],
    )


async def make_admin(sessions: SessionFactory) -> User:
    async with transaction(sessions) as session:
        admin = User(email=f"office-{uuid.uuid4().hex[:8]}@school.test", role=Role.admin)
        admin.password_hash = hash_password(PASSWORD)
        session.add(admin)
    return admin


async def _audit(sessions: SessionFactory, parent_id: uuid.UUID) -> list[AuditLog]:
    async with sessions() as session:
        return list(
            await session.scalars(
                select(AuditLog)
                .where(col(AuditLog.entity_type) == "family_dunning", col(AuditLog.entity_id) == str(parent_id))
                .order_by(col(AuditLog.occurred_at))
            )
        )


async def test_the_office_pauses_and_resumes_a_family_in_arrears_and_both_are_audited(
    kit: DunningKit,  # noqa: F811
    sessions: SessionFactory,
    served_api: str,
    context: BrowserContext,
) -> None:
    family = kit.family.parent_id
    async with transaction(sessions) as session:
        # What billing records of a declined renewal (the stand-in billing workflow does not).
        account = BillingAccount(parent_id=family, workflow_id=f"family-billing-{family}")
        session.add(account)
        await session.flush()
        session.add(
            Invoice(
                billing_account_id=account.id,
                stripe_invoice_id="in_1",
                status="past_due",
                amount_due_minor=12000,
                first_failed_at=datetime.now(UTC),
                attempt_count=1,
            )
        )
    await kit.fail(failure(kit.family, decline_code="insufficient_funds"))
    await eventually(kit.snapshot, until=lambda snap: bool(snap.invoices), what="the failed invoice in dunning")
    admin = await make_admin(sessions)

    page = await context.new_page()
    await sign_in(page, served_api, admin.email, "/office/arrears")
    await page.get_by_role("link", name="Pat Lee").click()
    await page.wait_for_url(f"{served_api}/office/arrears/{family}")
    await expect(page.get_by_role("heading", name="Pat Lee: dunning")).to_be_visible()
    await expect(page.get_by_role("cell", name="in_1")).to_be_visible()

    await page.get_by_role("group", name="Pause").get_by_label("Reason").fill("the family called: paying Friday")
    await page.get_by_role("group", name="Pause").get_by_role("button", name="Pause").click()
    await page.wait_for_url(f"{served_api}/office/arrears/{family}?notice=dunning_pause")
    await expect(page.get_by_role("status")).to_contain_text("Paused")
    await eventually(kit.snapshot, until=lambda snap: snap.paused, what="dunning paused")

    async def resume_offered() -> bool:
        await page.goto(f"{served_api}/office/arrears/{family}")
        return await page.get_by_role("group", name="Resume").get_by_role("button").is_enabled()

    await eventually(resume_offered, what="the page offering to resume")
    await page.get_by_role("group", name="Resume").get_by_label("Reason").fill("Friday came")
    await page.get_by_role("group", name="Resume").get_by_role("button", name="Resume").click()
    await page.wait_for_url(f"{served_api}/office/arrears/{family}?notice=dunning_resume")
    await eventually(kit.snapshot, until=lambda snap: not snap.paused, what="dunning resumed")

    rows = await eventually(lambda: _audit(sessions, family), until=lambda rows: len(rows) == 2, what="2 audit rows")
    assert [(row.action, row.actor_user_id, row.actor_role) for row in rows] == [
        ("dunning.pause", admin.id, "admin"),
        ("dunning.resume", admin.id, "admin"),
    ]
    assert [row.after for row in rows] == [
        {"action": "pause", "reason": "the family called: paying Friday"},
        {"action": "resume", "reason": "Friday came"},
    ]

    # A reason is required: too short a one is refused with the form again, and nothing is signalled.
    await page.get_by_role("group", name="Pause").get_by_label("Reason").fill("no")
    await page.get_by_role("group", name="Pause").get_by_label("Reason").evaluate("e => e.removeAttribute('minlength')")
    await page.get_by_role("group", name="Pause").get_by_role("button", name="Pause").click()
    await expect(page.get_by_role("alert")).to_contain_text("Give a reason")
    assert len(await _audit(sessions, family)) == 2


async def test_the_office_lists_enrollments_by_state(
    kit: DunningKit,  # noqa: F811
    sessions: SessionFactory,
    served_api: str,
    context: BrowserContext,
) -> None:
    admin = await make_admin(sessions)
    page = await context.new_page()
    await sign_in(page, served_api, admin.email, "/office/enrollments?view=active")
    # The kit's family has one active enrollment (its child, Sam).
    await expect(page.get_by_role("cell", name="Sam")).to_be_visible()
    await page.get_by_role("link", name="Waitlist").click()
    await expect(page.get_by_text("No enrollment here.")).to_be_visible()
