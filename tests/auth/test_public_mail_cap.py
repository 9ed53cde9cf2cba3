"""The daily cap on emails anyone can trigger without signing in: over it, an email is recorded as suppressed
and not sent, and nothing raises (Temporal would retry a raise forever)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from activities.email import EmailActivities
from core.contracts.email import SendEmail
from core.db import SessionFactory, transaction
from core.settings import Settings
from devstack.smtp_sink import SmtpSink
from models import Communication, Parent, Role
from tests.auth.conftest import AUTH
from workers.registry import WorkerDeps


async def statuses(sessions: SessionFactory, recipient: str) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(
            select(col(Communication.status))
            .where(col(Communication.recipient) == recipient)
            .order_by(col(Communication.created_at))
        )
        return list(rows.all())


async def test_password_resets_over_the_daily_cap_are_suppressed_and_the_last_link_sent_still_works(
    client_for: Callable[..., Any], make_person: Callable[..., Any], sessions: SessionFactory, smtp_sink: SmtpSink
) -> None:
    client: httpx.AsyncClient = await client_for(public_email_daily_cap_per_address=2)
    parent = await make_person(Role.parent, domain="example.com")
    for _ in range(3):  # each answer comes after its background send has run (ASGI transport)
        assert (await client.post(f"{AUTH}/password-reset", json={"email": parent.email})).status_code == 202

    assert await statuses(sessions, parent.email) == ["sent", "sent", "suppressed"]
    newest = (await smtp_sink.wait_for_messages(parent.email, count=2))[0]
    assert len(smtp_sink.messages(parent.email)) == 2
    token = re.search(r"/reset-password\?token=([\w-]+)", newest["text"])
    assert token is not None
    confirmed = await client.post(
        f"{AUTH}/password-reset/confirm", json={"token": token.group(1), "password": "a brand new password"}
    )
    assert confirmed.status_code == 204, confirmed.text  # the suppressed request closed no link


async def test_enrollment_emails_over_the_daily_cap_are_suppressed_not_retried(
    make_settings: Callable[..., Settings], worker_deps: WorkerDeps, sessions: SessionFactory, smtp_sink: SmtpSink
) -> None:
    email = f"capped-{uuid.uuid4().hex[:8]}@example.com"
    async with transaction(sessions) as session:
        parent = Parent(first_name="Robin", last_name="Okafor", email=email, phone="604-555-0142")
        session.add(parent)
    emails = EmailActivities(
        make_settings(public_email_daily_cap_per_address=2), sessions, worker_deps.mailer, worker_deps.identity
    )
    context = {"student_first_name": "Ada", "instrument": "piano", "status_url": "https://cedar.test/e/1"}

    def waitlisted(n: int) -> SendEmail:
        return SendEmail(
            template="enrollment_waitlisted",
            dedup_key=f"cap-{email}-{n}",
            to="parent",
            parent_id=parent.id,
            context=context,
        )

    results = [await emails.send_email(waitlisted(n)) for n in range(3)]
    assert [r.suppressed for r in results] == [False, False, True]
    assert (await emails.send_email(waitlisted(2))).suppressed  # a retry of a suppressed email stays so
    # Mail the family asked for by other means is not capped.
    receipt = SendEmail(
        template="billing_receipt",
        dedup_key=f"cap-{email}-receipt",
        to="parent",
        parent_id=parent.id,
        context={"amount": "$10.00", "paid_on": "today", "payment_reference": "pi_1"},
    )
    assert not (await emails.send_email(receipt)).suppressed

    await smtp_sink.wait_for_messages(email, count=3)
    assert len(smtp_sink.messages(email)) == 3
    assert await statuses(sessions, email) == ["sent", "sent", "suppressed", "sent"]
