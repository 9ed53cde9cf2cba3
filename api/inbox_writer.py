"""The webhook's events stored together: one statement for every event that arrived while the last one ran.

Storing one event costs this process a pool checkout, a round trip and a commit, which one statement shares
among all the events waiting. A burst of webhooks (a renewal day, a replay from Stripe's dashboard) is when both
the API and PostgreSQL are busiest, and it is when requests overlap enough to share statements; one request
alone is stored at once.

Each request still answers only once the statement holding its event has committed, so Stripe never hears 2xx
for an event that is not stored. When a batch fails for one of its events, each is stored again on its own,
so that an event that cannot be stored fails only its own request.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as SQLAlchemyTimeoutError
from sqlalchemy.ext.asyncio import AsyncEngine

from core.stripe_inbox import StoredEvent, store_events

MAX_BATCH = 100  # bounds a statement's size; more waiting events go in the next one


class WebhookInboxWriter:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._waiting: list[tuple[dict[str, Any], str, asyncio.Future[StoredEvent]]] = []
        self._writing: asyncio.Task[None] | None = None

    async def store(self, event: dict[str, Any], body: str) -> StoredEvent:
        """Stored once (or found stored) and committed; raises what storing it raised."""
        stored: asyncio.Future[StoredEvent] = asyncio.get_running_loop().create_future()
        self._waiting.append((event, body, stored))
        if self._writing is None:
            # Starts on the loop's next turn: requests whose bodies arrived in the same turn join this batch.
            self._writing = asyncio.create_task(self._write_while_waiting())
        return await stored

    async def _write_while_waiting(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting[:MAX_BATCH], self._waiting[MAX_BATCH:]
                await self._write(batch)
        finally:
            self._writing = None

    async def _write(self, batch: list[tuple[dict[str, Any], str, asyncio.Future[StoredEvent]]]) -> None:
        try:
            async with self._engine.connect() as connection:
                driver = (await connection.get_raw_connection()).driver_connection
                outcomes = await store_events(driver, [(event, body) for event, body, _ in batch], source="webhook")
        except Exception as failed:
            if len(batch) > 1 and not _unreachable(failed):  # one event spoiled the batch: find it
                for item in batch:
                    await self._write([item])
                return
            for _, _, stored in batch:
                _settle(stored, error=failed)
        else:
            for (_, _, stored), outcome in zip(batch, outcomes, strict=True):
                _settle(stored, outcome=outcome)


def _unreachable(error: Exception) -> bool:
    """PostgreSQL down or the pool exhausted: storing the events one by one would fail as many times."""
    return isinstance(error, (OSError, asyncpg.InterfaceError, OperationalError, SQLAlchemyTimeoutError))


def _settle(
    stored: asyncio.Future[StoredEvent], outcome: StoredEvent | None = None, error: BaseException | None = None
) -> None:
    if stored.done():  # the request was cancelled (its client left): its event is stored all the same
        return
    if error is not None:
        stored.set_exception(error)
    elif outcome is not None:
        stored.set_result(outcome)
