"""A family's make-up credits on its page: a cancellation before the notice earns one, booked from the page into
the upcoming lessons; a late cancellation is offered with the forfeit warning, and its outcome shown."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from playwright.async_api import BrowserContext, expect
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory
from core.settings import Settings
from models import Lesson, LessonKind, MakeupCredit
from tests.pages.conftest import set_password, sign_in
from tests.school_api.conftest import add_lesson, future_local, make_family, make_teacher

__all__ = ["add_lesson", "make_family", "make_teacher"]  # fixtures


async def test_a_family_books_a_makeup_from_its_page_and_a_late_cancel_is_forfeited(
    sessions: SessionFactory,
    settings: Settings,
    served_api: str,
    context: BrowserContext,
    run_worker: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family, teacher = await make_family(), await make_teacher()
    student = family.students[0]
    await set_password(sessions, family.parent.user_id)
    early = await add_lesson(teacher.teacher, student, future_local(settings, 6, 16))
    late = await add_lesson(teacher.teacher, student, datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3))

    page = await context.new_page()
    async with run_worker():
        await sign_in(page, served_api, family.parent.email)
        await expect(page.get_by_text("No open make-up credit.")).to_be_visible()

        # Before the notice: a plain cancel, which earns a credit (shown with its expiry in the school's time).
        await page.locator(f'form[action="/family/lessons/{early.id}/cancel"] button').click()
        await page.wait_for_url(f"{served_api}/family?notice=lesson_cancelled_credit")
        await expect(page.get_by_role("status")).to_have_text(
            "The lesson is cancelled; you earned a make-up credit (below)."
        )
        async with sessions() as session:
            credit = await session.scalar(select(MakeupCredit).where(col(MakeupCredit.origin_lesson_id) == early.id))
        assert credit is not None
        credits = page.locator("section", has=page.get_by_role("heading", name="Make-up credits"))
        await expect(credits.get_by_text(re.compile(r"Book before .*\d{4}"))).to_be_visible()

        # Book it: the slots page, the first open time, then back in the upcoming lessons.
        await credits.get_by_role("link", name=re.compile("Book a make-up")).click()
        await page.wait_for_url(f"{served_api}/family/makeups/{credit.id}")
        first = page.get_by_role("button", name=re.compile("^Book the make-up of ")).first
        label = await first.get_attribute("aria-label")
        assert label is not None
        when = label.removeprefix("Book the make-up of ").split(" with ")[0]
        await first.click()
        await page.wait_for_url(f"{served_api}/family?notice=makeup_booked")
        upcoming = page.locator("section", has=page.get_by_role("heading", name="Upcoming lessons"))
        await expect(upcoming.get_by_text(when)).to_be_visible()
        await expect(page.get_by_text("No open make-up credit.")).to_be_visible()
        async with sessions() as session:
            kinds = (
                await session.scalars(
                    select(col(Lesson.kind)).where(col(Lesson.student_id) == student.id, col(Lesson.kind) == "makeup")
                )
            ).all()
        assert kinds == [LessonKind.makeup]

        # The same credit again: it is used, said so on the page.
        again = await page.goto(f"{served_api}/family/makeups/{credit.id}")
        assert again is not None
        assert again.status == 409

        # After the notice: offered with the warning, and forfeited.
        await page.goto(f"{served_api}/family")
        row = page.locator(f'form[action="/family/lessons/{late.id}/cancel"]')
        await expect(row.get_by_text(re.compile("cancelling now forfeits it"))).to_be_visible()
        await row.get_by_role("button", name=re.compile("and forfeit it$")).click()
        await page.wait_for_url(f"{served_api}/family?notice=lesson_cancelled_forfeited")
        await expect(page.get_by_role("status")).to_have_text(
            "The lesson is cancelled; it is forfeited (no make-up credit)."
        )
    async with sessions() as session:
        statuses = dict(
            (
                await session.execute(
                    select(col(Lesson.id), col(Lesson.status)).where(col(Lesson.id).in_([early.id, late.id]))
                )
            )
            .tuples()
            .all()
        )
        forfeited = await session.scalar(select(MakeupCredit).where(col(MakeupCredit.origin_lesson_id) == late.id))
    assert statuses == {early.id: "cancelled", late.id: "cancelled"}
    assert forfeited is None
