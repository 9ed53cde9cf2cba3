"""The Stripe event inbox: a verified event is stored once (unique event id), then handed to the family's
billing workflow by signal-with-start. The webhook endpoint and the missed-webhook catch-up share this path.

An event whose customer is not (yet) a family of ours is kept with status ``unknown_customer``, never dropped;
the catch-up hands it over once the customer is known. An event stored but never handed over (Temporal was
away) keeps status ``received`` and the catch-up hands it over too.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeAlias

import asyncpg
import stripe
from pydantic import BaseModel
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlmodel import col
from stripe.params import EventListParams
from temporalio import activity
from temporalio.client import Client

from core.contracts.billing import FAMILY_BILLING_WORKFLOW, SIGNAL_STRIPE_EVENT, FamilyBillingInput, StripeEventReceived
from core.contracts.scheduled import CatchUpRequest, CatchUpResult
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.temporal import billing_workflow_id
from models import BillingAccount, StripeEvent, StripeEventStatus, SystemSetting

log = logging.getLogger("cedar.billing.inbox")

CHECKPOINT_KEY = "stripe_events_checkpoint"
# Events are listed from a little before the checkpoint: several can share a second.
CHECKPOINT_OVERLAP = timedelta(minutes=5)
# How old a `received` event must be before the catch-up assumes its hand-over was lost.
STUCK_AFTER = timedelta(seconds=30)
FIRST_CATCHUP_LOOKBACK = timedelta(days=3)  # Stripe stops retrying after three days


def _ref(value: Any) -> str | None:
    if isinstance(value, dict):
        return value.get("id")
    return value if isinstance(value, str) else None


def summarize(event: dict[str, Any]) -> tuple[str | None, StripeEventReceived]:
    """The customer an event concerns and the signal that carries it to that family's workflow."""
    obj = (event.get("data") or {}).get("object") or {}
    kind = obj.get("object")
    customer = obj.get("id") if kind == "customer" else _ref(obj.get("customer"))
    invoice = obj.get("id") if kind == "invoice" else _ref(obj.get("invoice"))
    charge = obj.get("id") if kind == "charge" else _ref(obj.get("charge")) if kind == "refund" else None
    received = StripeEventReceived(
        stripe_event_id=str(event["id"]),
        type=str(event["type"]),
        object_id=obj.get("id"),
        invoice_id=invoice,
        charge_id=charge,
    )
    return customer, received


class StoredEvent(BaseModel):
    received: StripeEventReceived
    parent_id: uuid.UUID | None
    is_new: bool
    status: str


# Where a webhook's new event for one of our families is announced (payload: the Stripe event id), for the
# worker-side forwarder (``workers/stripe_forwarder.py``) to hand it over; the API process only stores and answers.
STRIPE_EVENTS_CHANNEL = "cedar_stripe_events"

# One round trip for any number of events: find each one's family, store each once, announce the new events of
# our families, and read the status of earlier copies. The webhook stores the events of concurrent requests in
# one statement (``api/inbox_writer.py``): the statement, not its rows, is what costs. Written in the driver's own
# ($n) style so the webhook's path can run it on a bare asyncpg connection, and sessions through
# ``exec_driver_sql``. The catch-up and reconciliation hand over what they store themselves: no announcement.
# The final SELECT reads ``announced`` although nobody needs its count: PostgreSQL runs a SELECT in WITH only as
# far as the main query demands, so without that reference pg_notify would never be called.
STORE_EVENTS_SQL = f"""
    WITH incoming AS (
        SELECT incoming.*, account.parent_id
        FROM unnest(
            CAST($1 AS uuid[]), CAST($2 AS text[]), CAST($3 AS text[]), CAST($4 AS text[]),
            CAST($5 AS timestamptz[]), CAST($6 AS text[])
        ) AS incoming(id, stripe_event_id, type, customer, created, payload)
        LEFT JOIN billing_accounts AS account ON account.stripe_customer_id = incoming.customer
    ), inserted AS (
        INSERT INTO stripe_events
            (id, stripe_event_id, type, stripe_customer_id, stripe_created_at, payload, source, status, received_at)
        SELECT id, stripe_event_id, type, customer, created, CAST(payload AS jsonb), $7,
            CASE
                WHEN customer IS NULL THEN 'ignored'
                WHEN parent_id IS NOT NULL THEN 'received'
                ELSE 'unknown_customer'
            END,
            now()
        FROM incoming
        ON CONFLICT ON CONSTRAINT uq_stripe_events_event_id DO NOTHING
        RETURNING stripe_event_id, status
    ), announced AS (
        SELECT pg_notify('{STRIPE_EVENTS_CHANNEL}', stripe_event_id) FROM inserted
        WHERE status = 'received' AND $7 = 'webhook'
    )
    SELECT incoming.stripe_event_id, incoming.parent_id, inserted.status AS inserted_status,
        earlier.status AS earlier_status, (SELECT count(*) FROM announced) AS announced
    FROM incoming
        LEFT JOIN inserted ON inserted.stripe_event_id = incoming.stripe_event_id
        LEFT JOIN stripe_events AS earlier ON earlier.stripe_event_id = incoming.stripe_event_id
"""  # noqa: S608 (interpolates only the constant channel name)

Database: TypeAlias = AsyncSession | AsyncConnection | asyncpg.Connection


async def store_event(db: Database, event: dict[str, Any], source: str, body: str | None = None) -> StoredEvent:
    """Stores a verified event once; a second delivery finds the first row (see ``store_events``)."""
    return (await store_events(db, [(event, body)], source))[0]


async def store_events(
    db: Database, events: Sequence[tuple[dict[str, Any], str | None]], source: str
) -> list[StoredEvent]:
    """Stores verified events once each, in one statement; what became of each, in the order given.

    An event about no customer (a plan, a product) is kept as ``ignored``; one about a customer that is not a
    family of ours as ``unknown_customer``. Each event comes with its JSON as received, when there is one: stored
    as it is rather than serialized again. A copy of an event given twice is stored once: the second is a
    duplicate. On a session, inside its transaction; on a bare asyncpg connection, as one autocommitted statement.
    """
    summaries = [summarize(event) for event, _ in events]
    first_copy: dict[str, int] = {}
    for index, (_, received) in enumerate(summaries):
        first_copy.setdefault(received.stripe_event_id, index)
    rows_in = [_row(*events[index], *summaries[index]) for index in first_copy.values()]
    args = (*(list(column) for column in zip(*rows_in, strict=True)), source)
    rows: Sequence[Sequence[Any]]
    if isinstance(db, asyncpg.Connection):
        rows = await db.fetch(STORE_EVENTS_SQL, *args)
    else:
        connection = db if isinstance(db, AsyncConnection) else await db.connection()
        rows = (await connection.exec_driver_sql(STORE_EVENTS_SQL, args)).all()
    outcome = {row[0]: row for row in rows}
    stored = []
    for index, (_, received) in enumerate(summaries):
        _id, parent_id, inserted_status, earlier_status, _announced = outcome[received.stripe_event_id]
        is_new = inserted_status is not None and first_copy[received.stripe_event_id] == index
        # Neither: a concurrent copy of this event is being stored (its row is not visible to this statement yet).
        status = inserted_status or earlier_status or StripeEventStatus.received
        if is_new and inserted_status == StripeEventStatus.unknown_customer:
            log.warning("stripe event %s (%s) for an unknown customer kept", received.stripe_event_id, received.type)
        stored.append(StoredEvent(received=received, parent_id=parent_id, is_new=is_new, status=status))
    return stored


def _row(
    event: dict[str, Any], body: str | None, customer: str | None, received: StripeEventReceived
) -> tuple[uuid.UUID, str, str, str | None, datetime | None, str]:
    """One event's values, in the order of the statement's arrays."""
    payload = json.dumps(event) if body is None else body
    return uuid.uuid4(), received.stripe_event_id, received.type[:100], customer, _created_at(event), payload


def _created_at(event: dict[str, Any]) -> datetime | None:
    created = event.get("created")
    if not isinstance(created, int):
        return None
    try:
        return datetime.fromtimestamp(created, UTC)
    except (OverflowError, ValueError, OSError):  # not a time Stripe would send: stored without one
        return None


async def hand_over(client: Client, settings: Settings, parent_id: uuid.UUID, received: StripeEventReceived) -> None:
    """Signal-with-start the family's billing workflow with the event (it re-reads the event's object)."""
    await client.start_workflow(
        FAMILY_BILLING_WORKFLOW,
        FamilyBillingInput(parent_id=parent_id),
        id=billing_workflow_id(parent_id),
        task_queue=settings.task_queue,
        start_signal=SIGNAL_STRIPE_EVENT,
        start_signal_args=[received],
    )


async def received_events(
    sessions: SessionFactory, stripe_event_ids: list[str] | None = None, limit: int = 1000
) -> list[tuple[uuid.UUID, StripeEventReceived]]:
    """Events stored ``received`` for one of our families (those of ``stripe_event_ids``, or any), oldest first,
    each with its family: what a hand-over needs."""
    query = (
        select(StripeEvent, col(BillingAccount.parent_id))
        .join(BillingAccount, col(BillingAccount.stripe_customer_id) == col(StripeEvent.stripe_customer_id))
        .where(col(StripeEvent.status) == StripeEventStatus.received)
        .order_by(col(StripeEvent.received_at))
        .limit(limit)
    )
    if stripe_event_ids is not None:
        query = query.where(col(StripeEvent.stripe_event_id).in_(stripe_event_ids))
    async with sessions() as session:
        rows = (await session.execute(query)).all()
    return [(parent_id, summarize(event.payload)[1]) for event, parent_id in rows]


class StripeInboxActivities:
    def __init__(self, client: stripe.StripeClient, settings: Settings, sessions: SessionFactory, temporal: Client):
        self._stripe = client
        self._settings = settings
        self._sessions = sessions
        self._temporal = temporal

    @activity.defn(name="stripe_catch_up_events")
    async def catch_up(self, request: CatchUpRequest) -> CatchUpResult:
        """Feed every Stripe event the inbox lacks through the webhook's path, then move the checkpoint."""
        checkpoint = request.since or await self._checkpoint()
        events = await self._list_events(checkpoint - CHECKPOINT_OVERLAP)
        newest, stored, to_hand_over = checkpoint, 0, []
        for event in sorted(events, key=lambda e: e["created"]):
            newest = max(newest, datetime.fromtimestamp(event["created"], UTC))
            async with transaction(self._sessions) as session:
                result = await store_event(session, event, source="catchup")
            stored += result.is_new
            if result.is_new and result.parent_id is not None:
                to_hand_over.append((result.parent_id, result.received))
            activity.heartbeat(stored)
        to_hand_over += await self._stranded()
        for parent_id, received in to_hand_over:
            await hand_over(self._temporal, self._settings, parent_id, received)
        await self._save_checkpoint(newest)
        return CatchUpResult(listed=len(events), stored=stored, handed_over=len(to_hand_over), checkpoint=newest)

    async def _list_events(self, since: datetime) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        params: EventListParams = {"created": {"gte": int(since.timestamp())}, "limit": 100}
        while True:
            page = await self._stripe.v1.events.list_async(params=params)
            events += [e.to_dict() for e in page.data]
            if not page.has_more or not page.data:
                return events
            params["starting_after"] = page.data[-1].id

    async def _stranded(self) -> list[tuple[uuid.UUID, StripeEventReceived]]:
        """Stored events never acted on: hand-overs lost, or customers that have since become ours."""
        stuck_before = datetime.now(UTC) - STUCK_AFTER
        async with transaction(self._sessions) as session:
            rows = (
                await session.execute(
                    select(StripeEvent, col(BillingAccount.parent_id))
                    .join(BillingAccount, col(BillingAccount.stripe_customer_id) == col(StripeEvent.stripe_customer_id))
                    .where(
                        (col(StripeEvent.status) == StripeEventStatus.unknown_customer)
                        | (
                            (col(StripeEvent.status) == StripeEventStatus.received)
                            & (col(StripeEvent.received_at) < stuck_before)
                        )
                    )
                    .limit(1000)
                )
            ).all()
            ids = [event.id for event, _ in rows]
            if ids:
                await session.execute(
                    update(StripeEvent).where(col(StripeEvent.id).in_(ids)).values(status=StripeEventStatus.received)
                )
        return [(parent_id, summarize(event.payload)[1]) for event, parent_id in rows]

    async def _checkpoint(self) -> datetime:
        async with self._sessions() as session:
            row = await session.get(SystemSetting, CHECKPOINT_KEY)
        if row is None:
            return datetime.now(UTC) - FIRST_CATCHUP_LOOKBACK
        return datetime.fromtimestamp(int(row.value), UTC)

    async def _save_checkpoint(self, newest: datetime) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                insert(SystemSetting)
                .values(
                    key=CHECKPOINT_KEY,
                    value=int(newest.timestamp()),
                    description="Stripe events are caught up to this instant (Unix seconds)",
                    updated_at=datetime.now(UTC),
                )
                .on_conflict_do_update(
                    index_elements=["key"],
                    set_={"value": int(newest.timestamp()), "updated_at": datetime.now(UTC)},
                )
            )
