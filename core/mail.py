"""Sending email over SMTP (a local sink in development, any SMTP server in production)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib

from core.settings import Settings


@dataclass(frozen=True)
class OutgoingEmail:
    to: str
    subject: str
    text: str
    html: str
    # Lets a receiving sink or a person's mail client tie a message to Cedar's communications row.
    dedup_key: str


def message_id(dedup_key: str) -> str:
    """The Message-ID of the email with this dedup key, the same on every attempt. SMTP has no idempotency: a
    worker that dies after the server accepted a message and before its row says so sends it again, and the same
    Message-ID is what lets the recipient's mailbox (and the development sink) show it once."""
    return f"<{hashlib.sha256(dedup_key.encode()).hexdigest()[:40]}@cedar.local>"


class Mailer:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def build(self, email: OutgoingEmail) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self._settings.mail_from
        message["To"] = email.to
        message["Subject"] = email.subject
        message["Message-ID"] = message_id(email.dedup_key)
        message["X-Cedar-Dedup-Key"] = email.dedup_key
        message.set_content(email.text)
        message.add_alternative(email.html, subtype="html")
        return message

    async def send(self, email: OutgoingEmail) -> str:
        """Sends one message and returns its Message-ID."""
        message = self.build(email)
        settings = self._settings
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            start_tls=settings.smtp_use_tls,
            timeout=settings.smtp_timeout.total_seconds(),
        )
        return str(message["Message-ID"])

    async def ping(self) -> None:
        """Connects and says NOOP: raises when the SMTP server cannot be reached."""
        settings = self._settings
        client = aiosmtplib.SMTP(
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            timeout=settings.smtp_timeout.total_seconds(),
        )
        await client.connect()
        try:
            await client.noop()
        finally:
            client.close()
