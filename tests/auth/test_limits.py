"""Lockout after repeated failures, and rate limits per account and per IP (429 with Retry-After)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory, transaction
from core.rate_limit import Limit, hit, purge_past_windows
from models import RateLimitBucket, Role
from tests.auth.conftest import AUTH, Person
from tests.waiting import eventually


async def attempt(client: httpx.AsyncClient, person: Person, password: str) -> httpx.Response:
    return await client.post(f"{AUTH}/login", json={"email": person.email, "password": password})


async def test_repeated_failures_lock_the_account_for_a_while(
    client_for: Callable[..., Any], make_person: Callable[..., Any]
) -> None:
    client = await client_for(
        lockout_after_failures=3, lockout_duration=timedelta(seconds=2), login_rate_limit_per_minute_account=100
    )
    parent = await make_person(Role.parent)
    for _ in range(3):
        assert (await attempt(client, parent, "wrong password")).status_code == 401
    locked = await attempt(client, parent, parent.password)  # even the right password waits
    assert locked.status_code == 423
    assert locked.json()["error"] == "account_locked"
    assert 1 <= int(locked.headers["retry-after"]) <= 3

    response = await eventually(
        lambda: attempt(client, parent, parent.password),
        until=lambda response: response.status_code != 423,
        timeout=10,
        what="the lock lifted",
        interval=0.25,
    )
    assert response.status_code == 200


async def test_a_successful_login_resets_the_failure_count(
    client_for: Callable[..., Any], make_person: Callable[..., Any]
) -> None:
    client = await client_for(lockout_after_failures=3)
    parent = await make_person(Role.parent)
    for _ in range(2):
        await attempt(client, parent, "wrong password")
    assert (await attempt(client, parent, parent.password)).status_code == 200
    for _ in range(2):
        assert (await attempt(client, parent, "wrong password")).status_code == 401
    assert (await attempt(client, parent, parent.password)).status_code == 200


async def test_logins_are_rate_limited_per_account(
    client_for: Callable[..., Any], make_person: Callable[..., Any]
) -> None:
    client = await client_for(login_rate_limit_per_minute_account=3, lockout_after_failures=100)
    parent, other = await make_person(Role.parent), await make_person(Role.parent)
    for _ in range(3):
        assert (await attempt(client, parent, "wrong password")).status_code == 401
    limited = await attempt(client, parent, parent.password)
    assert limited.status_code == 429
    assert limited.json()["error"] == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    assert (await attempt(client, other, other.password)).status_code == 200  # another account is not affected


async def test_logins_and_resets_are_rate_limited_per_ip(
    client_for: Callable[..., Any], make_person: Callable[..., Any]
) -> None:
    client = await client_for(login_rate_limit_per_minute_ip=4)
    people = [await make_person(Role.parent) for _ in range(5)]
    statuses = [(await attempt(client, person, person.password)).status_code for person in people]
    assert statuses == [200, 200, 200, 200, 429]
    resets = [(await client.post(f"{AUTH}/password-reset", json={"email": p.email})).status_code for p in people]
    assert resets == [202, 202, 202, 202, 429]


async def test_counters_of_past_windows_are_purged(sessions: SessionFactory) -> None:
    now = datetime.now(UTC)
    async with transaction(sessions) as session:
        await hit(session, [Limit("login:ip:old", 5)], now=now - timedelta(minutes=5))
        await hit(session, [Limit("login:ip:recent", 5)], now=now)
    async with transaction(sessions) as session:
        await purge_past_windows(session, now=now)
    async with sessions() as session:
        keys = set((await session.scalars(select(col(RateLimitBucket.key)))).all())
    assert "login:ip:old" not in keys
    assert "login:ip:recent" in keys


async def test_an_hourly_limit_keeps_its_count_for_the_hour_and_outlives_the_purge(sessions: SessionFactory) -> None:
    hour = timedelta(hours=1)
    start = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    async with transaction(sessions) as session:
        assert await hit(session, [Limit("enrollment:ip:a", 1, hour)], now=start + timedelta(minutes=5)) is None
        wait = await hit(session, [Limit("enrollment:ip:a", 1, hour)], now=start + timedelta(minutes=50))
    assert wait == 10 * 60  # to the end of the hour, not of a minute
    async with transaction(sessions) as session:
        await purge_past_windows(session, now=start + timedelta(minutes=55))
    async with sessions() as session:
        assert await session.get(RateLimitBucket, "enrollment:ip:a") is not None
    async with transaction(sessions) as session:
        assert await hit(session, [Limit("enrollment:ip:a", 1, hour)], now=start + hour) is None
