"""When the workflow service refuses the start, a request without a key leaves nothing behind; one with a key
keeps its row so the same request retried later resumes it."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from sqlalchemy import func, select
from sqlmodel import col

from api.main import create_app
from core.db import SessionFactory
from core.settings import Settings
from models import Enrollment
from tests.enrollment.helpers import application


async def _post(settings: Settings, key: str | None) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as client:
            headers = {"Idempotency-Key": key} if key else {}
            return await client.post("/api/v1/enrollments", json=application(), headers=headers)


async def test_a_refused_start_saves_nothing_without_a_key_and_keeps_the_row_with_one(
    make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    # The server answers, but refuses every start: the namespace does not exist.
    refusing = make_settings(temporal_namespace="no-such-namespace")

    response = await _post(refusing, key=None)
    assert response.status_code == 503, response.text
    assert "nothing was saved" in response.json()["detail"]
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Enrollment)) == 0

    response = await _post(refusing, key="retry-me")
    assert response.status_code == 503
    assert "same Idempotency-Key" in response.json()["detail"]
    async with sessions() as session:
        kept = await session.scalar(select(Enrollment).where(col(Enrollment.idempotency_key) == "retry-me"))
    assert kept is not None
    assert kept.state == "received"
