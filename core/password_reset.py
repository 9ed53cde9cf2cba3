"""The password-reset email: one message outside any workflow, sent straight through the SMTP server and
recorded in ``communications`` under a dedup key."""

from __future__ import annotations

import hashlib
import html
import logging
from datetime import UTC, datetime

from core.db import SessionFactory, transaction
from core.identity import IdentityService, ResetLink
from core.mail import Mailer, OutgoingEmail
from core.settings import Settings
from models import Communication, CommunicationStatus

log = logging.getLogger("cedar.auth")
SUBJECT = "Reset your Cedar Heights password"


async def send_password_reset(
    sessions: SessionFactory, identity: IdentityService, mailer: Mailer, settings: Settings, email: str
) -> None:
    """Mints a reset link for ``email`` and mails it; does nothing for an unknown or inactive account.

    Runs after the API has answered 202, so neither the answer nor its timing says whether the account exists.
    """
    try:
        async with transaction(sessions) as session:
            reset = await identity.password_reset_link(session, email)
            if reset is None:
                return
            communication = Communication(
                dedup_key=f"password-reset:{reset.user_id}:{hashlib.sha256(reset.link.encode()).hexdigest()[:32]}",
                template="password_reset",
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
