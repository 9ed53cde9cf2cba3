"""The SMTP sink's storage: each message as `<id>.json` (parsed) plus `<id>.eml` (raw) in one directory,
so the mail page survives a restart of `./cedar run`."""

from __future__ import annotations

import json
import os
import secrets
import time
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import getaddresses
from pathlib import Path
from typing import Any


def _content(part: EmailMessage) -> str:
    try:
        return str(part.get_content())
    except (LookupError, ValueError):  # unknown charset or broken encoding: show what we can
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", errors="replace") if isinstance(payload, bytes) else str(payload)


def parse_message(raw: bytes, mail_from: str, rcpt_tos: list[str]) -> dict[str, Any]:
    """The JSON form of one received message (headers decoded, first text and HTML parts extracted)."""
    message = BytesParser(policy=policy.default).parsebytes(raw)
    assert isinstance(message, EmailMessage)
    text: str | None = None
    html: str | None = None
    attachments: list[dict[str, Any]] = []
    for part in message.walk():
        if part.is_multipart():
            continue
        assert isinstance(part, EmailMessage)
        kind = part.get_content_type()
        if part.get_content_disposition() != "attachment" and kind == "text/plain" and text is None:
            text = _content(part)
        elif part.get_content_disposition() != "attachment" and kind == "text/html" and html is None:
            html = _content(part)
        else:
            size = len(part.get_payload(decode=True) or b"")
            attachments.append({"filename": part.get_filename(), "content_type": kind, "size": size})
    headers: dict[str, str] = {}
    for name, value in message.items():
        headers[name] = f"{headers[name]}\n{value}" if name in headers else str(value)
    header_to = [address for _name, address in getaddresses(message.get_all("To", []) + message.get_all("Cc", []))]
    return {
        "mail_from": mail_from,
        "rcpt_tos": list(rcpt_tos),
        "to": header_to,
        "subject": str(message.get("Subject", "")),
        "text": text,
        "html": html,
        "headers": headers,
        "attachments": attachments,
        "size": len(raw),
    }


class MessageStore:
    """Messages in memory, mirrored to `directory` (the only writer is the sink process)."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._messages: dict[str, dict[str, Any]] = {}
        self._last_stamp = 0
        for path in self.directory.glob("*.json"):
            try:
                record = json.loads(path.read_text())
                self._messages[record["id"]] = record
                self._last_stamp = max(self._last_stamp, int(record["id"].split("-")[0]))
            except (OSError, ValueError, KeyError):
                continue  # a file cut short by a kill: skip it rather than refuse to start

    def add(self, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> dict[str, Any]:
        # Microseconds, strictly increasing, first in the id: ids sort in arrival order, even for two
        # messages within one clock tick.
        self._last_stamp = max(time.time_ns() // 1000, self._last_stamp + 1)
        received_at = datetime.fromtimestamp(self._last_stamp / 1e6, UTC).isoformat()
        record = {
            "id": f"{self._last_stamp:016d}-{secrets.token_hex(4)}",
            "received_at": received_at,
            **parse_message(raw, mail_from, rcpt_tos),
        }
        (self.directory / f"{record['id']}.eml").write_bytes(raw)
        partial = self.directory / f"{record['id']}.json.tmp"
        partial.write_text(json.dumps(record))
        os.replace(partial, self.directory / f"{record['id']}.json")
        self._messages[record["id"]] = record
        return record

    def list(self, to: str | None = None) -> list[dict[str, Any]]:
        """Newest first; `to` keeps messages with that envelope or To/Cc recipient (case-insensitive)."""
        records = sorted(self._messages.values(), key=lambda record: record["id"], reverse=True)
        if to is None:
            return records
        wanted = to.strip().lower()
        return [r for r in records if wanted in {a.lower() for a in r["rcpt_tos"] + r["to"]}]

    def get(self, message_id: str) -> dict[str, Any] | None:
        return self._messages.get(message_id)

    def raw(self, message_id: str) -> bytes | None:
        if message_id not in self._messages:
            return None  # only known ids touch the disk: no path tricks through the URL
        return (self.directory / f"{message_id}.eml").read_bytes()

    def clear(self) -> int:
        count = len(self._messages)
        for message_id in list(self._messages):
            for suffix in (".json", ".eml"):
                (self.directory / f"{message_id}{suffix}").unlink(missing_ok=True)
        self._messages.clear()
        return count
