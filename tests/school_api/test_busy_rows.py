"""A request that waits on a row another writer holds answers 503 once the API's lock timeout passes, instead of
hanging for as long as that writer does."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory
from core.settings import Settings
from models import Role, SystemSetting

# Only a guard against a hung request, far beyond the test's lock timeout.
HANG_GUARD_SECONDS = 20
URL = "/api/v1/system-settings/term.deposit"


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(api_db_lock_timeout=timedelta(milliseconds=300), api_retry_after=timedelta(seconds=4))


async def test_a_setting_another_writer_holds_answers_503_then_saves_once_free(
    api: httpx.AsyncClient, sessions: SessionFactory, auth_headers: Callable[..., Any]
) -> None:
    admin = await auth_headers(Role.admin)
    assert (await api.put(URL, json={"value": 100}, headers=admin)).status_code == 200

    # The test's own engine is a worker's: no lock timeout, so it holds the row as long as it likes.
    async with sessions() as writer, writer.begin():
        await writer.execute(select(SystemSetting).where(col(SystemSetting.key) == "term.deposit").with_for_update())
        busy = await asyncio.wait_for(api.put(URL, json={"value": 200}, headers=admin), HANG_GUARD_SECONDS)

    assert busy.status_code == 503, busy.text
    assert busy.json() == {
        "error": "busy",
        "detail": "the records this request changes are busy with another change; retry shortly",
        "fields": {},
    }
    assert busy.headers["Retry-After"] == "4"
    # The refused change left nothing behind, and the same request succeeds once the row is free.
    assert (await api.get(URL, headers=admin)).json()["value"] == 100
    retried = await api.put(URL, json={"value": 200}, headers=admin)
    assert retried.status_code == 200
    assert retried.json()["value"] == 200
