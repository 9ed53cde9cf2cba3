"""The database engine and sessions: created once by whoever owns the lifetime (API lifespan, worker)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.settings import Settings, to_asyncpg_url

SessionFactory = async_sessionmaker[AsyncSession]


def create_engine(settings: Settings, url: str | None = None) -> AsyncEngine:
    return create_async_engine(
        to_asyncpg_url(url) if url else settings.effective_database_url,
        pool_size=settings.db_pool_size,
        # Recycling old connections instead of pinging before every checkout saves a round trip per request;
        # a connection the server dropped fails one query, which callers retry (activities) or report (API).
        pool_recycle=300,
        # Server-side timeouts keep a stuck query from holding a worker slot forever.
        connect_args={"server_settings": {"statement_timeout": "15000", "timezone": "UTC"}},
    )


def create_session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessions: SessionFactory) -> AsyncIterator[AsyncSession]:
    """A session whose work commits on success and rolls back on error."""
    async with sessions() as session, session.begin():
        yield session
