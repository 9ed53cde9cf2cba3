"""A teacher records a demo's outcome from their demos page, through the same service as
``POST /api/v1/enrollments/{id}/demo-outcome`` (the workflow's update and an audit row), and the enrollment becomes
active; another teacher sees none of it."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.async_api import BrowserContext, expect
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory
from core.settings import Settings
from domain.local_time import format_local
from models import AuditLog, Enrollment, Lesson, Teacher
from tests.enrollment.conftest import EnrollmentWorker, enrollment_worker  # noqa: F401 (a fixture)
from tests.enrollment.helpers import application, enroll, wait_for_state
from tests.pages.conftest import set_password, sign_in
from tests.waiting import eventually


async def _teacher(sessions: SessionFactory, teacher_id: uuid.UUID | None) -> Teacher:
    async with sessions() as session:
        teacher = await session.get(Teacher, teacher_id)
    assert teacher is not None
    assert teacher.user_id is not None
    return teacher


async def test_a_teacher_records_a_demo_outcome_from_the_page_and_the_enrollment_becomes_active(
    demo_data: None,
    settings: Settings,
    sessions: SessionFactory,
    served_api: str,
    enrollment_worker: EnrollmentWorker,  # noqa: F811
    context: BrowserContext,
) -> None:
    async with enrollment_worker(), httpx.AsyncClient(base_url=served_api, timeout=30) as http:
        enrollment_id = await enroll(http, application())
        await wait_for_state(http, enrollment_id, "demo_scheduled")
        async with sessions() as session:
            row = await session.get(Enrollment, uuid.UUID(enrollment_id))
            assert row is not None
            assert row.demo_lesson_id is not None
            demo = await session.get(Lesson, row.demo_lesson_id)
            assert demo is not None
            others = list(
                await session.scalars(
                    select(Teacher).where(col(Teacher.id) != row.teacher_id, col(Teacher.user_id).is_not(None))
                )
            )
        teacher = await _teacher(sessions, row.teacher_id)
        await set_password(sessions, teacher.user_id)  # type: ignore[arg-type]
        demo_local = demo.starts_at.astimezone(settings.timezone)

        # The week of the demo lists it, in the school's time.
        page = await context.new_page()
        await sign_in(page, served_api, teacher.email, f"/teacher?week={demo_local.date().isoformat()}")
        hour = f"{demo_local.hour % 12 or 12}:{demo_local:%M %p}"
        await expect(page.get_by_role("listitem").filter(has_text="Ada").filter(has_text=hour)).to_have_count(1)

        await page.goto(f"{served_api}/teacher/demos")
        item = page.locator(f"#enrollment-{enrollment_id}")
        await expect(item).to_contain_text("Ada")
        await expect(item).to_contain_text(format_local(demo.starts_at, settings.timezone))
        await item.get_by_role("button", name=re.compile(r"^Continue")).click()
        await page.wait_for_url(f"{served_api}/teacher/demos?notice=outcome_continue")
        await expect(page.get_by_role("status")).to_contain_text("the student continues")
        await wait_for_state(http, enrollment_id, "active")
        await expect(page.locator(f"#enrollment-{enrollment_id}")).to_have_count(0)

    async def audited() -> list[AuditLog]:
        async with sessions() as session:
            return list(
                await session.scalars(
                    select(AuditLog).where(
                        col(AuditLog.entity_id) == enrollment_id, col(AuditLog.action) == "demo_outcome"
                    )
                )
            )

    [entry] = await eventually(audited, what="the outcome's audit row")
    assert (entry.actor_user_id, entry.actor_role, entry.after) == (teacher.user_id, "teacher", {"outcome": "continue"})

    # Another teacher's pages show nothing of this student, and their outcome post is a 404 page.
    other = others[0]
    await set_password(sessions, other.user_id)  # type: ignore[arg-type]
    second = await context.browser.new_context()  # type: ignore[union-attr]
    try:
        theirs = await second.new_page()
        await sign_in(theirs, served_api, other.email, "/teacher/demos")
        await expect(theirs.locator(f"#enrollment-{enrollment_id}")).to_have_count(0)
        await expect(theirs.get_by_text("Nothing is waiting for you.")).to_be_visible()
    finally:
        await second.close()
