"""A request holds at most one pooled connection at a time.

The pool has no overflow (``db_max_overflow``), so a request that took a second connection while holding the
first would wait on itself once concurrent requests had taken the whole pool. With a pool of one connection such a
request waits at once, and fails after ``db_pool_timeout``: these routes each took a second connection before
(logout beside the principal's lookup; the exports' snapshot transaction beside it too).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from api.main import create_app
from core.settings import Settings
from models import Role

API = "/api/v1"


@pytest.fixture
async def one_connection_api(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(db_pool_size=1, db_max_overflow=0, db_pool_timeout=timedelta(seconds=3))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as client:
            yield client


async def test_logout_and_the_exports_work_on_a_pool_of_one_connection(
    one_connection_api: httpx.AsyncClient, make_family: Callable[..., Any], auth_headers: Callable[..., Any]
) -> None:
    family = await make_family()
    admin = await auth_headers(Role.admin)
    mine = await one_connection_api.get(f"{API}/privacy/export", headers=family.headers)
    assert mine.status_code == 200, mine.text
    assert mine.json()["parent"]["id"] == str(family.parent.id)
    theirs = await one_connection_api.get(f"{API}/parents/{family.parent.id}/export", headers=admin)
    assert theirs.status_code == 200, theirs.text
    # A refresh token in the body makes sign-out look it up: a query on the request's connection.
    out = await one_connection_api.post(
        f"{API}/auth/logout", headers=family.headers, json={"refresh_token": "not-a-token-of-this-user"}
    )
    assert out.status_code == 204, out.text
    # A teacher still may not take an export (the role check moved beside the snapshot's principal).
    teacher = await auth_headers(Role.teacher)
    refused = await one_connection_api.get(f"{API}/parents/{family.parent.id}/export", headers=teacher)
    assert refused.status_code == 403
