"""Dependency checks behind ``GET /health``: each answers quickly, and a failure names the cause."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.mail import Mailer
from core.settings import Settings
from core.temporal import LazyTemporalClient

CHECK_TIMEOUT_SECONDS = 3.0


@dataclass(frozen=True)
class CheckResult:
    status: str  # "up" | "down"
    error: str | None = None


async def check_database(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def check_temporal(temporal: LazyTemporalClient) -> None:
    client = await temporal.get()
    await client.service_client.check_health()


async def check_stripe(settings: Settings) -> None:
    base = settings.effective_stripe_api_base or "https://api.stripe.com"
    async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_SECONDS) as http:
        response = await http.get(f"{base}/v1/customers", params={"limit": 1}, auth=(settings.stripe_api_key, ""))
    response.raise_for_status()


def supervised_processes(settings: Settings) -> dict[str, Any] | None:
    """In development, what `./cedar run`'s supervisor reports of its children (restarts, last exits), or None
    when no supervisor runs this stack. Read from `<data_dir>/run/supervisor.json`, which it keeps current."""
    if settings.environment != "development":
        return None
    try:
        status: dict[str, Any] = json.loads((settings.data_dir / "run" / "supervisor.json").read_text())
    except (OSError, ValueError):
        return None
    children: dict[str, Any] | None = status.get("children")
    return children


async def run_check(check: Callable[[], Awaitable[None]]) -> CheckResult:
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # any failure means "down"; the message says why
        return CheckResult("down", f"{type(exc).__name__}: {exc}"[:300] or type(exc).__name__)
    return CheckResult("up")


async def check_all(
    settings: Settings, engine: AsyncEngine, temporal: LazyTemporalClient, mailer: Mailer
) -> dict[str, CheckResult]:
    names = ("database", "temporal", "stripe", "smtp")
    results = await asyncio.gather(
        run_check(lambda: check_database(engine)),
        run_check(lambda: check_temporal(temporal)),
        run_check(lambda: check_stripe(settings)),
        run_check(mailer.ping),
    )
    return dict(zip(names, results, strict=True))
