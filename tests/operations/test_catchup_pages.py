"""The Stripe catch-up streams Stripe's event list a page at a time: more events than a page are all stored once,
a heartbeat follows each page, the checkpoint moves once every page is done, and a retry resumes from the
heartbeat's cursor."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import stripe
from sqlalchemy import select
from sqlmodel import col
from stripe.params import EventListParams
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from activities.stripe_inbox import CHECKPOINT_KEY, CHECKPOINT_OVERLAP, StripeInboxActivities
from core.contracts.scheduled import CatchUpProgress, CatchUpRequest
from core.db import SessionFactory
from core.settings import Settings
from core.stripe import create_stripe_client
from models import StripeEvent, SystemSetting

PAGE = 3
CUSTOMERS = 8


async def _new_customer_events(client: stripe.StripeClient, count: int) -> list[str]:
    """``count`` customers, each announced by a ``customer.created`` event; their event ids."""
    ids = {(await client.v1.customers.create_async(params={"email": f"c{n}@x.example"})).id for n in range(count)}
    since = int((datetime.now(UTC) - timedelta(minutes=1)).timestamp())
    events = (
        await client.v1.events.list_async(params={"type": "customer.created", "created": {"gte": since}, "limit": 100})
    ).data
    found = [str(e.id) for e in events if e.data.object["id"] in ids]
    assert len(found) == count
    return found


async def _listed_in_order(client: stripe.StripeClient, since: datetime) -> list[str]:
    """Every event id the catch-up lists from ``since``, in Stripe's list order."""
    ids: list[str] = []
    params: EventListParams = {"created": {"gte": int((since - CHECKPOINT_OVERLAP).timestamp())}, "limit": 100}
    while True:
        page = await client.v1.events.list_async(params=params)
        ids += [str(e.id) for e in page.data]
        if not page.has_more or not page.data:
            return ids
        params["starting_after"] = page.data[-1].id


async def _stored(sessions: SessionFactory, ids: list[str]) -> list[StripeEvent]:
    async with sessions() as session:
        return list(await session.scalars(select(StripeEvent).where(col(StripeEvent.stripe_event_id).in_(ids))))


async def test_more_events_than_a_page_are_all_stored_once_and_the_checkpoint_moves(
    make_settings: Callable[..., Settings], sessions: SessionFactory, temporal_client: Client
) -> None:
    settings = make_settings(stripe_catchup_page_size=PAGE)
    client = create_stripe_client(settings)
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    ours = await _new_customer_events(client, CUSTOMERS)
    activities = StripeInboxActivities(client, settings, sessions, temporal_client)
    env = ActivityEnvironment()
    beats: list[CatchUpProgress] = []
    env.on_heartbeat = lambda *details: beats.append(CatchUpProgress.model_validate(details[0]))

    result = await env.run(activities.catch_up, CatchUpRequest(since=since))

    stored = await _stored(sessions, ours)
    assert sorted(e.stripe_event_id for e in stored) == sorted(ours)  # each once (the event id is unique)
    assert {e.source for e in stored} == {"catchup"}
    assert result.listed >= CUSTOMERS
    assert result.stored == result.listed  # nothing was stored before
    assert len(beats) >= -(-result.listed // PAGE)  # a heartbeat after every page
    assert [beat.listed for beat in beats] == sorted(beat.listed for beat in beats)
    assert all(beat.listed - before.listed <= PAGE for before, beat in itertools.pairwise(beats))
    assert beats[-1].stored == result.stored
    newest = max([(await client.v1.events.retrieve_async(i)).created for i in ours])
    assert result.checkpoint >= datetime.fromtimestamp(newest, UTC)
    async with sessions() as session:
        checkpoint = await session.get(SystemSetting, CHECKPOINT_KEY)
    assert checkpoint is not None
    assert checkpoint.value == int(result.checkpoint.timestamp()) >= newest

    again = await ActivityEnvironment().run(activities.catch_up, CatchUpRequest())  # from the stored checkpoint
    assert again.stored == 0
    assert again.listed >= 1  # the overlap lists the newest again


async def test_a_retried_catch_up_resumes_after_the_page_its_heartbeat_recorded(
    make_settings: Callable[..., Settings], sessions: SessionFactory, temporal_client: Client
) -> None:
    settings = make_settings(stripe_catchup_page_size=PAGE)
    client = create_stripe_client(settings)
    since = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=30)
    ours = await _new_customer_events(client, 4)
    listed = await _listed_in_order(client, since)
    cursor = sorted(listed.index(i) for i in ours)[1]  # two of ours before it, two after
    done, rest = listed[: cursor + 1], listed[cursor + 1 :]
    # The first attempt stored pages up to the cursor, heartbeat, and then its worker died.
    progress = CatchUpProgress(checkpoint=since, starting_after=listed[cursor], newest=since, listed=len(done))
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, heartbeat_details=[progress.model_dump(mode="json")])

    result = await env.run(
        StripeInboxActivities(client, settings, sessions, temporal_client).catch_up, CatchUpRequest()
    )

    stored = {e.stripe_event_id for e in await _stored(sessions, listed)}
    assert stored == set(rest)  # nothing before the cursor listed again
    assert (result.listed, result.stored) == (len(listed), len(rest))
    assert set(ours) - stored == set(ours) & set(done)
    assert result.checkpoint >= since
