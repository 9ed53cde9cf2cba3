"""Accounts with real passwords (argon2) for the auth tests: a parent with a family row, a teacher, an admin."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.main import create_app
from core.db import SessionFactory, transaction
from core.passwords import hash_password
from core.settings import Settings
from models import Parent, Role, Teacher, User

AUTH = "/api/v1/auth"
PASSWORD = "correct horse battery staple"


@dataclass
class Person:
    user_id: uuid.UUID
    email: str
    password: str
    row_id: uuid.UUID | None  # the parent's or teacher's row


@pytest.fixture
def make_person(sessions: SessionFactory) -> Callable[..., Any]:
    """``await make_person(Role.parent)`` → a user with a password (and their parent or teacher row).

    ``domain="example.com"`` for an address the API's validation accepts (it refuses reserved names like .test).
    """

    async def make(role: Role = Role.parent, password: str | None = PASSWORD, domain: str = "cedar.test") -> Person:
        tag = uuid.uuid4().hex[:8]
        email = f"{role}-{tag}@{domain}"
        async with transaction(sessions) as session:
            user = User(email=email, role=role, password_hash=hash_password(password) if password else None)
            session.add(user)
            await session.flush()
            row: Parent | Teacher | None = None
            if role == Role.parent:
                row = Parent(user_id=user.id, first_name="Pat", last_name=tag, email=email, phone="604-555-0100")
            elif role == Role.teacher:
                row = Teacher(
                    user_id=user.id,
                    first_name="Tia",
                    last_name=tag,
                    display_name=f"Tia {tag}",
                    email=email,
                    instruments=["piano"],
                )
            if row is not None:
                session.add(row)
                await session.flush()
        return Person(user.id, email, password or "", row.id if row else None)

    return make


@pytest.fixture
async def client_for(make_settings: Callable[..., Settings]) -> AsyncIterator[Callable[..., Any]]:
    """``await client_for(**setting_overrides)`` → a client on a real app built with those settings."""
    apps: list[Any] = []

    async def make(**overrides: Any) -> httpx.AsyncClient:
        app = create_app(make_settings(**overrides))
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        apps.append(lifespan)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cedar.test")

    yield make
    for lifespan in apps:
        await lifespan.__aexit__(None, None, None)
