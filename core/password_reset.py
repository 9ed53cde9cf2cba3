"""The password-reset email: one message outside any workflow, sent straight through the SMTP server and
recorded in ``communications`` under a dedup key."""

from __future__ import annotations

import hashlib
import html
import logging
import uuid
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.db import SessionFactory, transaction
from core.identity import IdentityService, ResetLink
from core.mail import Mailer, OutgoingEmail
from core.mail_cap import SUPPRESSED_REASON, public_cap_reached
from core.settings import Settings
from models import Communication, CommunicationStatus, User

log = logging.getLogger("cedar.auth")
SUBJECT = "Reset your Cedar Heights password"
TEMPLATE = "password_reset"


async def send_password_reset(
    sessions: SessionFactory, identity: IdentityService, mailer: Mailer, settings: Settings, email: str
) -> None:
    """Mints a reset link for ``email`` and mails it; does nothing for an unknown or inactive account, and records
    the email as suppressed when the address already had its day's cap of public-action emails.

    Runs after the API has answered 202, so neither the answer nor its timing says whether the account exists.
    """
    try:
        async with transaction(sessions) as session:
            # Checked before a link is minted: minting closes the links already sent, which would leave the
            # person with none that works.
            if await _capped(session, settings, email):
                return
            reset = await identity.password_reset_link(session, email)
            if reset is None:
                return
            communication = Communication(
                dedup_key=f"password-reset:{reset.user_id}:{hashlib.sha256(reset.link.encode()).hexdigest()[:32]}",
                template=TEMPLATE,
                recipient=reset.email,
                subject=SUBJECT,
            )
            session.add(communication)
    except Exception:  # the identity provider is down: nothing was promised beyond the 202
        log.exception("auth.password_reset.link_failed")
        return
    status, message_id, error = CommunicationStatus.sent, None, None
    try:
        message_id = await mailer.send(_email(settings, reset, communication.dedup_key))
    except Exception as exc:  # the SMTP server is down: recorded as failed; the person can ask again
        status, error = CommunicationStatus.failed, f"{type(exc).__name__}: {exc}"[:2000]
        log.warning("auth.password_reset.email_failed communication=%s", communication.id)
    async with transaction(sessions) as session:
        row = await session.get(Communication, communication.id, with_for_update=True)
        if row is not None:
            row.status, row.message_id, row.error, row.attempts = status, message_id, error, row.attempts + 1
            row.sent_at = datetime.now(UTC) if status == CommunicationStatus.sent else None


async def _capped(session: AsyncSession, settings: Settings, email: str) -> bool:
    """True (and recorded as a suppressed email) when an active account's address had its day's public emails."""
    user = await session.scalar(select(User).where(col(User.email) == email.strip().lower(), col(User.is_active)))
    if user is None:
        return False  # unknown or inactive: nothing is sent anyway, and nothing may be recorded
    dedup_key = f"password-reset:{user.id}:suppressed:{uuid.uuid4().hex}"
    if not await public_cap_reached(session, settings, TEMPLATE, user.email, dedup_key):
        return False
    session.add(
        Communication(
            dedup_key=dedup_key,
            template=TEMPLATE,
            recipient=user.email,
            subject=SUBJECT,
            status=CommunicationStatus.suppressed,
            error=SUPPRESSED_REASON,
        )
    )
    return True


def _email(settings: Settings, reset: ResetLink, dedup_key: str) -> OutgoingEmail:
    minutes = int(settings.password_reset_ttl.total_seconds() // 60)
    school = settings.school_name
    text = (
        f"Someone asked to reset the password of your {school} account.\n\n"
        f"Choose a new password here (the link works once, for {minutes} minutes):\n{reset.link}\n\n"
        "If it was not you, ignore this email; your password stays as it is."
    )
    page = (
        f"<p>Someone asked to reset the password of your {html.escape(school)} account.</p>"
        f'<p><a href="{html.escape(reset.link)}">Choose a new password</a> '
        f"(the link works once, for {minutes} minutes).</p>"
        "<p>If it was not you, ignore this email; your password stays as it is.</p>"
    )
    return OutgoingEmail(reset.email, SUBJECT, text, page, dedup_key)
