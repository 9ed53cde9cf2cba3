"""Alembic environment: migrates the database named by Cedar's settings, online, through asyncpg."""

from __future__ import annotations

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel

import models  # noqa: F401  (registers every table on the metadata)
from core.settings import Settings, to_asyncpg_url

config = context.config
if config.config_file_name is not None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = SQLModel.metadata


def _database_url() -> str:
    # Tests and tools may pass a URL with `-x url=...` or through the config object.
    url = context.get_x_argument(as_dictionary=True).get("url") or config.attributes.get("url")
    return to_asyncpg_url(url) if url else Settings().effective_database_url


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(_database_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("Cedar runs migrations online only: `alembic upgrade head`")
asyncio.run(_run_online())
