"""The webhook's new events reach their families' workflows from a worker process, not from the API: the
forwarder hands over what the endpoint announces, and what was stored while no forwarder listened."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta

import httpx
from sqlalchemy import select, text
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core.db import SessionFactory
from core.settings import Settings
from core.temporal import billing_workflow_id
from models import StripeEvent
from tests.billing.conftest import family_with_customer, post_event, stripe_event
from tests.conftest import WEBHOOK_SECRET
from tests.waiting import eventually
from workers.stripe_forwarder import StripeEventForwarder, next_burst


async def _post(api: httpx.AsyncClient, customer: str) -> str:
    event = stripe_event("invoice.payment_succeeded", {"id": "in_forwarded", "object": "invoice", "customer": customer})
    response = await post_event(api, event, WEBHOOK_SECRET)
    assert response.json()["status"] == "received", response.text
    return str(event["id"])


async def _signals(client: Client, parent_id: uuid.UUID) -> int | None:
    """Signals the family's billing workflow has received, or None while it does not exist."""
    try:
        history = await client.get_workflow_handle(billing_workflow_id(parent_id)).fetch_history()
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED for e in history.events)


async def test_events_stored_while_nobody_forwards_wait_and_announced_ones_follow_at_once(
    api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory, temporal_client: Client
) -> None:
    parent_id, customer = await family_with_customer(sessions)
    first = await _post(api, customer)
    # The API stores and answers; it starts no workflow itself.
    async with sessions() as session:
        status = await session.scalar(select(col(StripeEvent.status)).where(col(StripeEvent.stripe_event_id) == first))
    assert status == "received"
    assert await _signals(temporal_client, parent_id) is None

    forwarder = StripeEventForwarder(settings, sessions, temporal_client)
    async with forwarder.running():
        # On taking the lead it hands over what waited (no worker polls here: the workflow just gets its signals).
        assert await eventually(lambda: _signals(temporal_client, parent_id), what="the waiting event") == 1
        await _post(api, customer)
        assert await eventually(lambda: _at_least(temporal_client, parent_id, 2), what="the announced event")
    assert await _signals(temporal_client, parent_id) == 2  # each once: the first is not handed over again


async def test_one_forwarder_leads_and_another_takes_over_when_it_stops(
    settings: Settings, sessions: SessionFactory, temporal_client: Client
) -> None:
    first = StripeEventForwarder(settings, sessions, temporal_client)
    second = StripeEventForwarder(settings, sessions, temporal_client)
    stop_first = asyncio.Event()
    first_running = asyncio.create_task(first.run(stop_first))
    await asyncio.wait_for(first.leading.wait(), 20)
    async with second.running():
        await asyncio.wait_for(second.standing_by.wait(), 20)
        assert first.leading.is_set()
        assert not second.leading.is_set()
        stop_first.set()  # the leader's process ends: its lock goes with its connection
        await first_running
        await asyncio.wait_for(second.leading.wait(), 20)
        assert not first.leading.is_set()


async def _at_least(client: Client, parent_id: uuid.UUID, count: int) -> bool | None:
    return (await _signals(client, parent_id) or 0) >= count or None


async def test_a_forwarder_whose_connection_is_killed_listens_again_and_misses_nothing(
    api: httpx.AsyncClient, settings: Settings, sessions: SessionFactory, temporal_client: Client
) -> None:
    parent_id, customer = await family_with_customer(sessions)
    forwarder = StripeEventForwarder(settings, sessions, temporal_client)
    async with forwarder.running():
        await asyncio.wait_for(forwarder.leading.wait(), 20)
        async with sessions() as session:  # what an operator's restart of PostgreSQL, or a network cut, does
            killed = await session.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE query LIKE 'LISTEN %' AND datname = current_database()"
                )
            )
        assert killed == 1
        await _post(api, customer)  # announced while nobody listens: found when it leads again
        assert await eventually(
            lambda: _at_least(temporal_client, parent_id, 1), timeout=30, what="the event after the cut"
        )
        assert forwarder.leading.is_set()
    assert await _signals(temporal_client, parent_id) == 1


async def test_a_burst_is_handed_over_once_it_pauses_and_a_long_one_once_it_has_lasted_its_longest(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        stripe_handover_quiet=timedelta(seconds=0.5), stripe_handover_max_delay=timedelta(seconds=2)
    )
    announced: asyncio.Queue[str] = asyncio.Queue()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for n in range(3):  # a burst: three at once, two more a moment later, then a pause, then one more
        announced.put_nowait(f"evt_{n}")
    for n, delay in ((3, 0.05), (4, 0.1), (5, 1.2)):
        loop.call_later(delay, announced.put_nowait, f"evt_{n}")
    assert await next_burst(announced, stop, settings) == ["evt_0", "evt_1", "evt_2", "evt_3", "evt_4"]
    assert await next_burst(announced, stop, settings) == ["evt_5"]

    trickle = [f"evt_trickle_{n}" for n in range(30)]  # one every 0.1 s, never pausing: cut after 2 s
    for n, event_id in enumerate(trickle):
        loop.call_later(0.1 * n, announced.put_nowait, event_id)
    first = await next_burst(announced, stop, settings)
    assert trickle[0] in first
    assert len(first) < len(trickle)
    rest = await next_burst(announced, stop, settings)
    assert first + rest == trickle
