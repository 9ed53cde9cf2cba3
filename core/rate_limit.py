"""Fixed-window rate limits (login and password-reset attempts per minute, public enrollments per hour; per IP
and per account or email), kept in PostgreSQL.

Why PostgreSQL and not process memory: the API runs as several uvicorn workers (and several hosts behind a load
balancer), so in-process counters would each allow the full budget and reset on every deploy. One upsert per
attempt is small beside the argon2 password check, and the counters survive restarts. Keys carry a hash of the
email, never the address itself.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import case, delete, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from models import RateLimitBucket

WINDOW = timedelta(minutes=1)


@dataclass(frozen=True)
class Limit:
    key: str
    per_window: int
    # Each key keeps one window length: its counter restarts when a hit falls in a newer window.
    window: timedelta = WINDOW


def account_key(action: str, email: str) -> str:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:40]
    return f"{action}:account:{digest}"


def ip_key(action: str, ip: str) -> str:
    return f"{action}:ip:{ip[:80]}"


def _window_start(now: datetime, window: timedelta) -> datetime:
    seconds = int(window.total_seconds())
    return datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, UTC)


async def hit(session: AsyncSession, limits: list[Limit], now: datetime | None = None) -> int | None:
    """Counts one attempt against every limit: None when all are within budget, else the seconds to wait.

    The attempt is counted even when refused, so hammering a closed door keeps it closed.
    """
    now = now or datetime.now(UTC)
    waits: list[float] = []
    for limit in limits:
        window_start = _window_start(now, limit.window)
        window_end = window_start + limit.window
        statement = insert(RateLimitBucket).values(
            key=limit.key, window_start=window_start, expires_at=window_end, hits=1
        )
        same_window = col(RateLimitBucket.window_start) == statement.excluded.window_start
        hits = await session.scalar(
            statement.on_conflict_do_update(
                index_elements=["key"],
                set_={
                    "hits": case((same_window, col(RateLimitBucket.hits) + 1), else_=1),
                    "window_start": statement.excluded.window_start,
                    "expires_at": statement.excluded.expires_at,
                },
            ).returning(col(RateLimitBucket.hits))
        )
        if (hits or 0) > limit.per_window:
            waits.append((window_end - now).total_seconds())
    return max(1, math.ceil(max(waits))) if waits else None


async def purge_past_windows(session: AsyncSession, now: datetime | None = None) -> None:
    """Deletes counters whose window has ended (a hit in a new window resets a counter anyway), so the table holds
    only the current windows' keys however many addresses have tried over time.

    Run in its own short transaction: rows another transaction holds are skipped, never waited for, so the purge
    cannot deadlock with the counting upserts.
    """
    stale = (
        select(col(RateLimitBucket.key))
        .where(col(RateLimitBucket.expires_at) < (now or datetime.now(UTC)))
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    await session.execute(delete(RateLimitBucket).where(col(RateLimitBucket.key).in_(stale)))
