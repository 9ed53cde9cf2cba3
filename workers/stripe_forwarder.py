"""Hands the webhook's new Stripe events to their families' billing workflows, from a worker process.

The webhook endpoint only verifies, stores and answers: its INSERT announces each new event of one of our
families on a PostgreSQL channel (``STRIPE_EVENTS_CHANNEL``). One forwarder at a time listens: the worker
processes elect it with a session advisory lock, and another takes over when its process ends. Handing over is
a signal-with-start, which costs the caller more CPU than the whole accept path does: done here, a burst of
webhooks does not slow the process that answers them.

An event announced while no forwarder listened stays ``received``: a forwarder hands such events over when it
starts leading, and the catch-up schedule does whenever it runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
from temporalio.client import Client

from activities.stripe_inbox import hand_over, received_events
from core.contracts.billing import StripeEventReceived
from core.db import SessionFactory
from core.settings import Settings, to_libpq_url
from core.stripe_inbox import STRIPE_EVENTS_CHANNEL

log = logging.getLogger("cedar.billing.forwarder")

LEADER_LOCK = "cedar:stripe-event-forwarder"
# How often a standing-by forwarder asks to lead, and how often a leader checks that its connection lives.
STAND_BY = timedelta(seconds=2)
HEARTBEAT = timedelta(seconds=5)
BATCH = 1000  # announcements handed over at once at most (what ``received_events`` reads in one query)
IN_FLIGHT = 8  # hand-overs at once: Temporal's pace, not the announcements', sets the rate anyway


class StripeEventForwarder:
    def __init__(self, settings: Settings, sessions: SessionFactory, temporal: Client) -> None:
        self._settings = settings
        self._sessions = sessions
        self._temporal = temporal
        # For tests and operators: this forwarder holds the lock and listens / found another one leading.
        self.leading = asyncio.Event()
        self.standing_by = asyncio.Event()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[StripeEventForwarder]:
        """Forwards in the background until the block ends."""
        stop = asyncio.Event()
        task = asyncio.create_task(self.run(stop))
        try:
            yield self
        finally:
            stop.set()
            await task

    async def run(self, stop: asyncio.Event) -> None:
        """Leads or stands by until ``stop``. Any failure (PostgreSQL gone, most often) is logged and the
        forwarder starts over: it must outlive whatever happens to the database."""
        while not stop.is_set():
            try:
                await self._serve(stop)
            except Exception:
                log.exception("the Stripe event forwarder failed; starting over")
            finally:
                self.leading.clear()
            await _wait(stop, STAND_BY)

    async def _serve(self, stop: asyncio.Event) -> None:
        connection = await asyncpg.connect(to_libpq_url(self._settings.effective_database_url))
        try:
            while not await connection.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", LEADER_LOCK):
                self.standing_by.set()
                if await _wait(stop, STAND_BY):
                    return
            self.standing_by.clear()
            announced: asyncio.Queue[str] = asyncio.Queue()
            await connection.add_listener(STRIPE_EVENTS_CHANNEL, lambda *args: announced.put_nowait(args[-1]))
            self.leading.set()
            log.info("forwarding Stripe events to billing workflows")
            await self._forward(None)  # whatever arrived while no forwarder listened
            while not stop.is_set():
                ids = await next_burst(announced, stop, self._settings)
                if ids:
                    await self._forward(ids)
                elif connection.is_closed():
                    raise asyncpg.InterfaceError("the listening connection closed")
        finally:
            await connection.close()

    async def _forward(self, stripe_event_ids: list[str] | None) -> None:
        events = await received_events(self._sessions, stripe_event_ids)
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def one(parent_id: uuid.UUID, received: StripeEventReceived) -> None:
            async with slots:
                try:
                    await hand_over(self._temporal, self._settings, parent_id, received)
                except Exception:  # stays `received`: the catch-up hands it over later
                    log.exception("stripe event %s stored but not handed over yet", received.stripe_event_id)

        await asyncio.gather(*(one(parent_id, received) for parent_id, received in events))


async def next_burst(announced: asyncio.Queue[str], stop: asyncio.Event, settings: Settings) -> list[str]:
    """The announced event ids of one burst (at most ``BATCH``), after waiting up to a heartbeat for the first.

    A burst ends when announcements pause for ``stripe_handover_quiet``, or ``stripe_handover_max_delay`` after
    its first: handing over during the burst would set Temporal to work beside the requests still arriving.
    """
    first = asyncio.ensure_future(announced.get())
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait({first, stopped}, timeout=HEARTBEAT.total_seconds(), return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if not first.done():
        first.cancel()
        return []
    ids = [first.result()]
    loop = asyncio.get_running_loop()
    ends_by = loop.time() + settings.stripe_handover_max_delay.total_seconds()
    while len(ids) < BATCH:
        if not announced.empty():
            ids.append(announced.get_nowait())
            continue
        wait = min(settings.stripe_handover_quiet.total_seconds(), ends_by - loop.time())
        if wait <= 0:
            break
        try:
            ids.append(await asyncio.wait_for(announced.get(), timeout=wait))
        except TimeoutError:
            break
    return ids


async def _wait(stop: asyncio.Event, period: timedelta) -> bool:
    """Waits ``period`` or until ``stop``; True when stopped."""
    try:
        await asyncio.wait_for(stop.wait(), timeout=period.total_seconds())
    except TimeoutError:
        return False
    return True
