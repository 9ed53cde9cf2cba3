"""Storing Stripe's events in the inbox (``stripe_events``): one statement for any number of events.

The webhook (``api/inbox_writer.py``) stores what Stripe sends; the catch-up and reconciliation activities
(``activities/stripe_inbox.py``, ``activities/reconciliation.py``) store what they list. All share this path.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias

import asyncpg
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from core.contracts.billing import StripeEventReceived
from domain.privacy import EVENTS_STORED_REDACTED, redact_event_payload
from models import StripeEventStatus

log = logging.getLogger("cedar.billing.inbox")


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
    if received.type in EVENTS_STORED_REDACTED:
        payload = json.dumps(redact_event_payload(event))
    return uuid.uuid4(), received.stripe_event_id, received.type[:100], customer, _created_at(event), payload


def _created_at(event: dict[str, Any]) -> datetime | None:
    created = event.get("created")
    if not isinstance(created, int):
        return None
    try:
        return datetime.fromtimestamp(created, UTC)
    except (OverflowError, ValueError, OSError):  # not a time Stripe would send: stored without one
        return None
