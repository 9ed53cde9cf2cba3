"""Building applications and watching enrollments in the enrollment tests."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import date
from typing import Any

import httpx
from sqlalchemy import func, select
from temporalio.client import Client

from core.db import SessionFactory
from core.temporal import billing_workflow_id
from devstack.smtp_sink import SmtpSink
from models import Communication, Enrollment, Lesson, Student, Teacher

ALL_WEEK = [{"weekday": day, "start": "08:00", "end": "21:00"} for day in range(7)]


def application(**overrides: Any) -> dict[str, Any]:
    """A valid application for a 10-year-old piano student, free all week from 8:00 to 21:00."""
    today = date.today()
    body: dict[str, Any] = {
        "parent": {
            "first_name": "Robin",
            "last_name": "Okafor",
            "email": f"robin.{uuid.uuid4().hex[:8]}@family.example",
            "phone": "+1 604 555 0142",
        },
        "student": {"first_name": "Ada", "last_name": "Okafor", "date_of_birth": f"{today.year - 10}-03-14"},
        "instrument": "piano",
        "lesson_minutes": 30,
        "billing_interval": "month",
        "preferred_windows": ALL_WEEK,
        "payment_method_id": "pm_card_visa",
        "consents": {"privacy_policy": True, "marketing_email": False},
    }
    body.update(overrides)
    return body


async def enroll(api: httpx.AsyncClient, body: dict[str, Any] | None = None, key: str | None = None) -> str:
    headers = {"Idempotency-Key": key} if key else {}
    response = await api.post("/api/v1/enrollments", json=body or application(), headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["enrollment_id"])


async def wait_for_state(api: httpx.AsyncClient, enrollment_id: str, *states: str, timeout: float = 20) -> dict:
    """Poll GET until the enrollment is in one of ``states``; fail with the last answer otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        response = await api.get(f"/api/v1/enrollments/{enrollment_id}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        if body["state"] in states:
            return body
        assert time.monotonic() < deadline, f"still {body['state']} (wanted {states}): {body}"
        await asyncio.sleep(0.1)


async def enrollment_row(sessions: SessionFactory, enrollment_id: str) -> Enrollment:
    async with sessions() as session:
        row = await session.get(Enrollment, uuid.UUID(enrollment_id))
        assert row is not None
        return row


async def teacher_by_email(sessions: SessionFactory, email: str) -> Teacher:
    async with sessions() as session:
        teacher = await session.scalar(select(Teacher).where(Teacher.email == email))
        assert teacher is not None
        return teacher


async def lessons_of(sessions: SessionFactory, enrollment_id: str, status: str | None = None) -> list[Lesson]:
    async with sessions() as session:
        query = select(Lesson).where(Lesson.enrollment_id == uuid.UUID(enrollment_id)).order_by(Lesson.starts_at)
        if status is not None:
            query = query.where(Lesson.status == status)
        return list(await session.scalars(query))


async def student_of(sessions: SessionFactory, enrollment_id: str) -> Student | None:
    row = await enrollment_row(sessions, enrollment_id)
    async with sessions() as session:
        return await session.get(Student, row.student_id) if row.student_id else None


async def communications(sessions: SessionFactory, enrollment_id: str) -> dict[str, Communication]:
    async with sessions() as session:
        rows = await session.scalars(
            select(Communication).where(Communication.enrollment_id == uuid.UUID(enrollment_id))
        )
        return {row.dedup_key.rsplit(":", 1)[-1]: row for row in rows}


async def sent_communications(
    sessions: SessionFactory, enrollment_id: str, keys: set[str], timeout: float = 10
) -> dict[str, Communication]:
    """The enrollment's communications rows once every key in ``keys`` is recorded as sent."""
    deadline = time.monotonic() + timeout
    while True:
        rows = await communications(sessions, enrollment_id)
        if keys <= {key for key, row in rows.items() if row.status == "sent"}:
            return rows
        assert time.monotonic() < deadline, {key: row.status for key, row in rows.items()}
        await asyncio.sleep(0.05)


async def count_rows(sessions: SessionFactory, model: type, *where: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def billing_events(client: Client, parent_id: uuid.UUID, expected: int, timeout: float = 10) -> list[str]:
    """What the stand-in billing workflow of the family has received, once it has ``expected`` events."""
    handle = client.get_workflow_handle(billing_workflow_id(parent_id))
    deadline = time.monotonic() + timeout
    while True:
        try:
            events: list[str] = await handle.query("events", result_type=list[str])
        except Exception:  # not started yet
            events = []
        if len(events) >= expected or time.monotonic() > deadline:
            return events
        await asyncio.sleep(0.1)


async def mail_of(smtp_sink: SmtpSink, enrollment_id: str, keys: set[str], timeout: float = 15) -> dict[str, list]:
    """The messages the sink received for this enrollment, by dedup key suffix, once every key in ``keys`` came."""
    prefix = f"enrollment:{enrollment_id}:"
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, list] = {}
        for message in smtp_sink.messages():
            key = message["headers"].get("X-Cedar-Dedup-Key", "").strip()
            if key.startswith(prefix):
                found.setdefault(key.removeprefix(prefix), []).append(message)
        if keys <= found.keys():
            return found
        assert time.monotonic() < deadline, (
            f"mail for {sorted(keys - found.keys())} did not arrive; got {sorted(found)}"
        )
        await asyncio.sleep(0.1)
