"""The database engine and sessions: created once by whoever owns the lifetime (API lifespan, worker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.settings import Settings, to_asyncpg_url

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(
    settings: Settings, url: str | None = None, purpose: Literal["api", "worker"] = "worker"
) -> AsyncEngine:
    """An engine for the API (short lock and statement timeouts: a request answers 503 rather than hang) or for
    workers and scripts (no lock timeout, a long statement timeout: their work retries or must finish)."""
    if purpose == "api":
        lock, statement = settings.api_db_lock_timeout, settings.api_db_statement_timeout
    else:
        lock, statement = timedelta(0), settings.worker_db_statement_timeout
    server_settings = {"lock_timeout": _milliseconds(lock), "statement_timeout": _milliseconds(statement)}
    return create_async_engine(
        to_asyncpg_url(url) if url else settings.effective_database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout.total_seconds(),
        # Recycling old connections instead of pinging before every checkout saves a round trip per request;
        # a connection the server dropped fails one query, which callers retry (activities) or report (API).
        pool_recycle=300,
        # Server-side timeouts keep a stuck query from holding a request or a worker slot forever.
        connect_args={"server_settings": {**server_settings, "timezone": "UTC"}},
    )


def _milliseconds(delay: timedelta) -> str:
    """A PostgreSQL timeout setting; 0 turns the timeout off, so a positive delay is at least 1 ms."""
    return str(max(1, delay // timedelta(milliseconds=1))) if delay > timedelta(0) else "0"


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on error."""
    async with sessions() as session, session.begin():
        yield session


async def lock_keys(session: AsyncSession, *keys: str) -> None:
    """Transaction-scoped advisory locks on ``keys``, released at commit or rollback.

    Taken in one (sorted) order, so two holders of overlapping key sets queue instead of deadlocking.
    """
    for key in sorted(set(keys)):
        await session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})


def schedule_lock_keys(teacher_id: object, student_id: object) -> tuple[str, str]:
    """The locks every writer of a lesson takes first.

    PostgreSQL may answer two concurrent inserts that collide under an exclusion constraint with a deadlock
    (each waits for the other's transaction) rather than a conflict; queueing writers per teacher and per student
    turns that into a clean conflict for the later one, and makes the student-overlap check race-free as well.
    """
    return f"lessons:teacher:{teacher_id}", f"lessons:student:{student_id}"
