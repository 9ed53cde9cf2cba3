from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import aiosmtplib
import httpx
import pytest

from devstack.ports import free_port
from devstack.smtp_sink import SmtpSink


def _message(to: str, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "Cedar <office@cedar.test>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content("See you at the demo lesson.")
    message.add_alternative("<p>See you at the <b>demo lesson</b>.</p>", subtype="html")
    return message


async def test_messages_are_kept_listed_and_shown_escaped(tmp_path: Path) -> None:
    sink = SmtpSink(free_port(), free_port(), tmp_path / "mail", tmp_path / "logs")
    sink.start()
    try:
        await aiosmtplib.send(_message("Parent <parent@cedar.test>", "Demo booked"), port=sink.smtp_port)
        await aiosmtplib.send(_message("other@cedar.test", "<script>alert(1)</script>"), port=sink.smtp_port)

        newest, oldest = sink.messages()
        assert newest["subject"] == "<script>alert(1)</script>"
        assert oldest["rcpt_tos"] == ["parent@cedar.test"]
        assert oldest["text"].strip() == "See you at the demo lesson."
        assert "<b>demo lesson</b>" in oldest["html"]
        assert oldest["headers"]["From"] == "Cedar <office@cedar.test>"
        assert [m["subject"] for m in sink.messages(to="PARENT@cedar.test")] == ["Demo booked"]
        found = await sink.wait_for_messages("parent@cedar.test")
        assert found[0]["id"] == oldest["id"]

        async with httpx.AsyncClient(base_url=sink.http_url) as http:
            one = (await http.get(f"/api/messages/{oldest['id']}")).json()
            assert one == oldest
            assert (await http.get("/api/messages/nope")).status_code == 404

            page = (await http.get("/")).text
            assert "<script>alert" not in page
            assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
            html_view = await http.get(f"/messages/{oldest['id']}/html")
            assert html_view.headers["content-security-policy"] == "sandbox"
            assert "demo lesson" in (await http.get(f"/messages/{oldest['id']}/text")).text
    finally:
        sink.stop()


async def test_an_outage_refuses_mail_and_a_restart_keeps_what_came_before(tmp_path: Path) -> None:
    sink = SmtpSink(free_port(), free_port(), tmp_path / "mail", tmp_path / "logs")
    sink.start()
    try:
        await aiosmtplib.send(_message("parent@cedar.test", "Before"), port=sink.smtp_port)
        sink.stop()
        with pytest.raises(aiosmtplib.SMTPConnectError):
            await aiosmtplib.send(_message("parent@cedar.test", "During"), port=sink.smtp_port, timeout=2)

        sink.start()
        await aiosmtplib.send(_message("parent@cedar.test", "After"), port=sink.smtp_port)
        assert [m["subject"] for m in sink.messages()] == ["After", "Before"]

        sink.clear()
        assert sink.messages() == []
    finally:
        sink.stop()
