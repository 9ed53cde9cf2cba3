"""The Stripe event inbox: a verified event is stored once (unique event id), then handed to the family's
billing workflow by signal-with-start. The webhook endpoint and the missed-webhook catch-up share this path.

An event whose customer is not (yet) a family of ours is kept with status ``unknown_customer``, never dropped;
the catch-up hands it over once the customer is known. An event stored but never handed over (Temporal was
away) keeps status ``received`` and the catch-up hands it over too. Storing itself is ``core/stripe_inbox.py``,
which the webhook's writer (``api/inbox_writer.py``) uses as well.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from stripe.params import EventListParams
from temporalio import activity
from temporalio.client import Client

from core.contracts.billing import (
    BILLING_SUMMARY_FROM_STRIPE,
    FAMILY_BILLING_WORKFLOW,
    SIGNAL_STRIPE_EVENT,
    FamilyBillingInput,
    StripeEventReceived,
)
from core.contracts.scheduled import CatchUpProgress, CatchUpRequest, CatchUpResult
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.stripe_inbox import store_event, summarize
from core.temporal import billing_workflow_id
from models import BillingAccount, StripeEvent, StripeEventStatus, SystemSetting

CHECKPOINT_KEY = "stripe_events_checkpoint"
# Events are listed from a little before the checkpoint: several can share a second.
CHECKPOINT_OVERLAP = timedelta(minutes=5)
# How old a `received` event must be before the catch-up assumes its hand-over was lost.
STUCK_AFTER = timedelta(seconds=30)
FIRST_CATCHUP_LOOKBACK = timedelta(days=3)  # Stripe stops retrying after three days


async def hand_over(client: Client, settings: Settings, parent_id: uuid.UUID, received: StripeEventReceived) -> None:
    """Signal-with-start the family's billing workflow with the event (it re-reads the event's object)."""
    await client.start_workflow(
        FAMILY_BILLING_WORKFLOW,
        FamilyBillingInput(parent_id=parent_id),
        id=billing_workflow_id(parent_id),
        task_queue=settings.task_queue,
        start_signal=SIGNAL_STRIPE_EVENT,
        start_signal_args=[received],
        static_summary=BILLING_SUMMARY_FROM_STRIPE,
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
        """Feed every Stripe event the inbox lacks through the webhook's path, then move the checkpoint.

        Stripe's list is read one page at a time: each page's events are stored (oldest first) and the new ones
        handed over before the next page is read, so memory holds one page. A heartbeat after each page carries
        the listing's cursor and counts; a retry resumes from it. The checkpoint moves only once every page is
        done (a page read out of time order leaves nothing behind it)."""
        details = activity.info().heartbeat_details
        if details:
            progress = CatchUpProgress.model_validate(details[0])
        else:
            checkpoint = request.since or await self._checkpoint()
            progress = CatchUpProgress(checkpoint=checkpoint, newest=checkpoint)
        since = progress.checkpoint - CHECKPOINT_OVERLAP
        params: EventListParams = {
            "created": {"gte": int(since.timestamp())},
            "limit": self._settings.stripe_catchup_page_size,
        }
        while True:
            if progress.starting_after is not None:
                params["starting_after"] = progress.starting_after
            page = await self._stripe.v1.events.list_async(params=params)
            await self._store_page([e.to_dict() for e in page.data], progress)
            if page.data:
                progress.starting_after = page.data[-1].id
            # A copy: the SDK sends heartbeat details later, while this goes on changing its progress.
            activity.heartbeat(progress.model_copy(deep=True))
            if not page.has_more or not page.data:
                break
        for parent_id, received in await self._stranded():
            await hand_over(self._temporal, self._settings, parent_id, received)
            progress.handed_over += 1
            activity.heartbeat(progress.model_copy(deep=True))
        await self._save_checkpoint(progress.newest)
        return CatchUpResult(
            listed=progress.listed,
            stored=progress.stored,
            handed_over=progress.handed_over,
            checkpoint=progress.newest,
        )

    async def _store_page(self, events: list[dict[str, Any]], progress: CatchUpProgress) -> None:
        """Stores one page's events, oldest first, and hands the new ones of our families over."""
        for event in sorted(events, key=lambda e: e["created"]):
            progress.newest = max(progress.newest, datetime.fromtimestamp(event["created"], UTC))
            async with transaction(self._sessions) as session:
                result = await store_event(session, event, source="catchup")
            progress.listed += 1
            progress.stored += result.is_new
            if result.is_new and result.parent_id is not None:
                await hand_over(self._temporal, self._settings, result.parent_id, result.received)
                progress.handed_over += 1

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
