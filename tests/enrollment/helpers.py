"""Building applications and watching enrollments in the enrollment tests."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlmodel import col
from temporalio.client import Client

from core.db import SessionFactory
from core.temporal import billing_workflow_id
from devstack.smtp_sink import SmtpSink
from models import Communication, Enrollment, Lesson, Student, Teacher
from tests.waiting import eventually

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


async def enrollment_status(api: httpx.AsyncClient, enrollment_id: str) -> dict[str, Any]:
    """The enrollment's public status page, as JSON."""
    response = await api.get(f"/api/v1/enrollments/{enrollment_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for_state(api: httpx.AsyncClient, enrollment_id: str, *states: str, timeout: float = 20) -> dict:
    """The enrollment's GET answer once it is in one of ``states``; fails with the last answer otherwise."""
    return await eventually(
        lambda: enrollment_status(api, enrollment_id),
        until=lambda body: body["state"] in states,
        timeout=timeout,
        what=f"the enrollment in {states}",
    )


async def enrollment_row(sessions: SessionFactory, enrollment_id: str) -> Enrollment:
    async with sessions() as session:
        row = await session.get(Enrollment, uuid.UUID(enrollment_id))
        assert row is not None
        return row


async def teacher_by_email(sessions: SessionFactory, email: str) -> Teacher:
    async with sessions() as session:
        teacher = await session.scalar(select(Teacher).where(col(Teacher.email) == email))
        assert teacher is not None
        return teacher


async def lessons_of(sessions: SessionFactory, enrollment_id: str, status: str | None = None) -> list[Lesson]:
    async with sessions() as session:
        query = (
            select(Lesson).where(col(Lesson.enrollment_id) == uuid.UUID(enrollment_id)).order_by(col(Lesson.starts_at))
        )
        if status is not None:
            query = query.where(col(Lesson.status) == status)
        return list(await session.scalars(query))


async def student_of(sessions: SessionFactory, enrollment_id: str) -> Student | None:
    row = await enrollment_row(sessions, enrollment_id)
    async with sessions() as session:
        return await session.get(Student, row.student_id) if row.student_id else None


class Rows(dict[str, Communication]):
    """Communications rows by key, shown by their status (a timed-out wait prints them)."""

    def __repr__(self) -> str:
        return repr({key: row.status for key, row in self.items()})


async def communications(sessions: SessionFactory, enrollment_id: str) -> Rows:
    async with sessions() as session:
        rows = await session.scalars(
            select(Communication).where(col(Communication.enrollment_id) == uuid.UUID(enrollment_id))
        )
        return Rows({row.dedup_key.rsplit(":", 1)[-1]: row for row in rows})


async def sent_communications(
    sessions: SessionFactory, enrollment_id: str, keys: set[str], timeout: float = 10
) -> Rows:
    """The enrollment's communications rows once every key in ``keys`` is recorded as sent."""

    def all_sent(rows: Rows) -> bool:
        return keys <= {key for key, row in rows.items() if row.status == "sent"}

    return await eventually(
        lambda: communications(sessions, enrollment_id),
        until=all_sent,
        timeout=timeout,
        what=f"{sorted(keys)} recorded as sent",
        interval=0.05,
    )


async def count_rows(sessions: SessionFactory, model: type, *where: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def billing_events(client: Client, parent_id: uuid.UUID, expected: int, timeout: float = 10) -> list[str]:
    """What the stand-in billing workflow of the family has received, once it has ``expected`` events."""
    handle = client.get_workflow_handle(billing_workflow_id(parent_id))

    async def received() -> list[str]:
        try:
            events: list[str] = await handle.query("events", result_type=list[str])
        except Exception:  # not started yet
            events = []
        return events

    return await eventually(
        received, until=lambda events: len(events) >= expected, timeout=timeout, what=f"{expected} billing event(s)"
    )


async def mail_of(smtp_sink: SmtpSink, enrollment_id: str, keys: set[str], timeout: float = 15) -> dict[str, list]:
    """The messages the sink received for this enrollment, by dedup key suffix, once every key in ``keys`` came."""
    prefix = f"enrollment:{enrollment_id}:"

    async def arrived() -> dict[str, list]:
        found: dict[str, list] = {}
        for message in smtp_sink.messages():
            key = message["headers"].get("X-Cedar-Dedup-Key", "").strip()
            if key.startswith(prefix):
                found.setdefault(key.removeprefix(prefix), []).append(message)
        return found

    return await eventually(
        arrived, until=lambda found: keys <= found.keys(), timeout=timeout, what=f"the enrollment's mail {sorted(keys)}"
    )
