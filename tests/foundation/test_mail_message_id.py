"""An email's Message-ID comes from its dedup key: a resend after a crash is the same message to the mailbox."""

from __future__ import annotations

from core.mail import Mailer, OutgoingEmail, message_id
from core.settings import Settings


def test_every_attempt_of_one_email_has_the_same_message_id_and_other_emails_another() -> None:
    mailer = Mailer(Settings())
    first = OutgoingEmail("robin@family.example", "Welcome", "Hello", "<p>Hello</p>", "enrollment:1:welcome-parent")
    again = OutgoingEmail("robin@family.example", "Welcome", "Hello", "<p>Hello</p>", "enrollment:1:welcome-parent")
    other = OutgoingEmail("robin@family.example", "Welcome", "Hello", "<p>Hello</p>", "enrollment:2:welcome-parent")

    assert mailer.build(first)["Message-ID"] == mailer.build(again)["Message-ID"] == message_id(first.dedup_key)
    assert mailer.build(other)["Message-ID"] != mailer.build(first)["Message-ID"]
    assert message_id(first.dedup_key).startswith("<")
    assert message_id(first.dedup_key).endswith("@cedar.local>")
