"""Every link in every email of the school's journeys opens a page for its recipient, in the browser: an enrollment
run to active, a receipt, a lesson reminder, a declined renewal walked through dunning, a password reset. Each link
starts with ``CEDAR_PUBLIC_BASE_URL`` and answers 200 with an HTML page (never JSON, a 404 or a 405), opened by its
recipient, signed in where the page needs it."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from typing import Any

import httpx
from playwright.async_api import Browser
from sqlalchemy import select, update
from sqlmodel import col

from core.contracts.scheduled import LESSON_REMINDERS_WORKFLOW, RemindersRequest
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.stripe import create_stripe_client
from core.temporal import dunning_workflow_id
from devstack.smtp_sink import SmtpSink
from domain.calendar import local_to_utc
from models import Enrollment, Lesson, Role, Subscription, Teacher, User
from tests.billing.conftest import billed_family, card
from tests.dunning.test_end_to_end import ATTACHES_THEN_DECLINES, E2E_TIMINGS
from tests.enrollment.helpers import application, wait_for_state
from tests.pages.conftest import set_password
from tests.pages.email_links_support import signed_in
from tests.waiting import eventually
from workers.main import build_deps, build_worker

LINK = re.compile(r"""https?://[^\s"'<>]+""")


def links_of(message: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for part in (message.get("text") or "", message.get("html") or ""):
        found |= {link.rstrip(".,;:)").replace("&amp;", "&") for link in LINK.findall(part)}
    return found


async def test_every_link_in_every_email_opens_an_html_page_for_its_recipient(
    demo_data: None,
    make_settings: Callable[..., Settings],
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Any,
    served_api: str,
    auth_headers: Callable[..., Any],
    browser: Browser,
    smtp_sink: SmtpSink,
) -> None:
    worker_settings = make_settings(**E2E_TIMINGS)
    stripe_client = create_stripe_client(settings)
    admin = await auth_headers(Role.admin)
    recipients: set[str] = set()
    async with (
        build_worker(temporal_client, build_deps(worker_settings, sessions, temporal_client)),
        httpx.AsyncClient(base_url=served_api, timeout=30) as http,
    ):
        # 1. An enrollment run to active: the parent's welcome, the teacher's notice, the parent's "active".
        body = application(payment_method_id=await card(stripe_client))
        created = await http.post("/api/v1/enrollments", json=body)
        assert created.status_code == 202, created.text
        enrollment_id = created.json()["enrollment_id"]
        await wait_for_state(http, enrollment_id, "demo_scheduled", timeout=30)
        outcome = await http.post(
            f"/api/v1/enrollments/{enrollment_id}/demo-outcome", json={"outcome": "continue"}, headers=admin
        )
        assert outcome.status_code == 200, outcome.text
        await wait_for_state(http, enrollment_id, "active", timeout=30)
        async with sessions() as session:
            enrollment = await session.get(Enrollment, uuid.UUID(enrollment_id))
            assert enrollment is not None
            teacher = await session.get(Teacher, enrollment.teacher_id)
            assert teacher is not None
            assert teacher.user_id is not None
        parent_email = body["parent"]["email"]
        recipients |= {parent_email, teacher.email}

        # 2. A receipt: the subscription's next invoice, paid.
        async def subscription() -> Subscription | None:
            async with sessions() as session:
                return await session.scalar(
                    select(Subscription).where(col(Subscription.enrollment_id) == uuid.UUID(enrollment_id))
                )

        subscribed = await eventually(subscription, timeout=30, what="the enrollment's subscription")
        renewal = await http.post(f"/api/v1/billing/subscriptions/{subscribed.id}/renewals", headers=admin)
        assert renewal.status_code == 201, renewal.text

        # 3. A lesson reminder: one of the new weekly lessons moved to tomorrow, and the daily run.
        tz = settings.timezone
        async with transaction(sessions) as session:
            lesson = await session.scalar(
                select(Lesson).where(col(Lesson.enrollment_id) == enrollment.id, col(Lesson.kind) == "regular").limit(1)
            )
            assert lesson is not None
            lesson.starts_at = local_to_utc(datetime.now(tz).date() + timedelta(days=1), time(7, 0), tz)
            lesson.ends_at = lesson.starts_at + timedelta(minutes=30)
        await temporal_client.execute_workflow(
            LESSON_REMINDERS_WORKFLOW,
            RemindersRequest(),
            id=f"reminders-{uuid.uuid4()}",
            task_queue=settings.task_queue,
        )

        # 4. A declined renewal walked through dunning to cancellation: the family's notices and its teacher's.
        billed = await billed_family(sessions, worker_settings, temporal_client, stripe_client, ATTACHES_THEN_DECLINES)
        declined = billed.family
        async with transaction(sessions) as session:
            teacher_user = User(email=f"teacher-{uuid.uuid4().hex[:8]}@school.test", role=Role.teacher)
            session.add(teacher_user)
            await session.flush()
            await session.execute(
                update(Teacher)
                .where(col(Teacher.id) == declined.teacher_id)
                .values(user_id=teacher_user.id, email=teacher_user.email, active_students=1)
            )
            start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=3)
            session.add(
                Lesson(
                    kind="regular",
                    teacher_id=declined.teacher_id,
                    student_id=declined.student_ids[0],
                    starts_at=start,
                    ends_at=start + timedelta(minutes=30),
                )
            )
        recipients |= {declined.email, teacher_user.email}
        renewal = await http.post(f"/api/v1/billing/subscriptions/{billed.subscription.id}/renewals", headers=admin)
        assert renewal.status_code == 201, renewal.text
        dunning = temporal_client.get_workflow_handle(dunning_workflow_id(declined.parent_id))
        assert await eventually(dunning.result, timeout=60, what="dunning to finish") == "cancelled"

        # 5. A password reset.
        reset = await http.post("/api/v1/auth/password-reset", json={"email": parent_email})
        assert reset.status_code == 202, reset.text

        expected = {
            parent_email: {"Welcome", "Reminder", "reset"},
            teacher.email: {"student"},
            declined.email: {"payment"},
            teacher_user.email: {"Lessons"},
        }

        def mail() -> dict[str, list[dict[str, Any]]]:
            return {to: smtp_sink.messages(to=to) for to in recipients}

        def arrived(found: dict[str, list[dict[str, Any]]]) -> bool:
            return all(
                any(word.lower() in m["subject"].lower() for m in found[to])
                for to, words in expected.items()
                for word in words
            )

        messages = await eventually(lambda: _async(mail), until=arrived, timeout=30, what="every journey's email")

    # Every recipient opens every link of every email sent to them, signed in as themselves.
    async with sessions() as session:
        users = {
            user.email: user
            for user in await session.scalars(select(User).where(User.email.in_(recipients)))  # type: ignore[attr-defined]
        }
    opened: list[tuple[str, str, str]] = []
    for to, received in messages.items():
        await set_password(sessions, users[to].id)
        context = await signed_in(browser, served_api, to)
        page = await context.new_page()
        try:
            for link in sorted(set().union(*(links_of(m) for m in received))):
                assert link.startswith(settings.public_base_url), f"{link} in an email to {to} is not one of ours"
                target = served_api + link.removeprefix(settings.public_base_url)
                response = await page.goto(target)
                assert response is not None
                kind = response.headers.get("content-type", "")
                assert response.status == 200, (to, link, response.status, kind)
                assert kind.startswith("text/html"), (to, link, response.status, kind)
                assert await page.locator("main h1").count() == 1, (to, link, await page.content())
                opened.append((to, link, page.url))
        finally:
            await context.close()
    paths = {re.sub(r"[?#].*|/[0-9a-f-]{36}", "", link.removeprefix(settings.public_base_url)) for _, link, _ in opened}
    assert {"", "/enrollments", "/set-password", "/reset-password", "/teacher", "/teacher/demos"} <= paths, paths
    assert {"/family", "/family/card"} <= paths, paths


async def _async(function: Callable[[], Any]) -> Any:
    return function()
