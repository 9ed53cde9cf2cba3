"""Closures after booking and teacher changes use the school API's factories (teachers, families, lessons), plus
a school year whose semester holds the lessons."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory
from core.settings import Settings
from models import Communication, Role
from tests.school_api.conftest import API, add_lesson, make_family, make_teacher

__all__ = ["add_lesson", "make_family", "make_teacher"]


@pytest.fixture
def school_year(api: httpx.AsyncClient, settings: Settings, auth_headers: Callable[..., Any]) -> Callable[..., Any]:
    """``await school_year()`` → (the year's id, the admin's headers): a year and one semester from a week ago to
    about four months ahead."""

    async def make() -> tuple[str, dict[str, str]]:
        admin = await auth_headers(Role.admin)
        today = datetime.now(settings.timezone).date()
        start, end = today - timedelta(days=7), today + timedelta(days=120)
        year = await api.post(
            f"{API}/academic-years",
            json={"name": f"Y{uuid.uuid4().hex[:6]}", "start_date": str(start), "end_date": str(end)},
            headers=admin,
        )
        assert year.status_code == 201, year.text
        term = {"name": "Term", "start_date": str(start), "end_date": str(end)}
        semester = await api.post(f"{API}/academic-years/{year.json()['id']}/semesters", json=term, headers=admin)
        assert semester.status_code == 201, semester.text
        return year.json()["id"], admin

    return make


async def sent(sessions: SessionFactory, prefix: str) -> dict[str, int]:
    """The sent emails whose dedup key starts with ``prefix``: {dedup key: attempts}."""
    async with sessions() as session:
        rows = await session.execute(
            select(col(Communication.dedup_key), col(Communication.attempts)).where(
                col(Communication.dedup_key).startswith(prefix), col(Communication.status) == "sent"
            )
        )
        return {str(key): int(attempts) for key, attempts in rows}


def local_day(settings: Settings, at: datetime) -> str:
    return str(at.astimezone(settings.timezone).date())


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC)
