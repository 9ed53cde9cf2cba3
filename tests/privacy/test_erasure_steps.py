"""The erasure's payload-key step destroys the family's keys (and this process forgets them at once); Stripe's
``customer.deleted`` event is stored redacted."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from sqlalchemy import select
from sqlmodel import col
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import WorkflowSerializationContext

from activities.erasure import ErasureActivities
from core.contracts.erasure import FamilyRef
from core.db import SessionFactory
from core.payload_codec import EncryptionCodec
from core.payload_keys import PayloadKeyDestroyed
from core.settings import Settings
from core.temporal import billing_workflow_id
from models import StripeEvent
from tests.billing.conftest import post_event, stripe_event
from tests.conftest import WEBHOOK_SECRET
from workers.main import build_deps


def steps(settings: Settings, sessions: SessionFactory, temporal_client: Client) -> ErasureActivities:
    deps = build_deps(settings, sessions, temporal_client)
    return ErasureActivities(settings, sessions, temporal_client, deps.stripe, deps.identity)


async def test_the_familys_payload_keys_are_destroyed_and_forgotten_by_this_process(
    settings: Settings, sessions: SessionFactory, temporal_client: Client
) -> None:
    codec = temporal_client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec)
    assert codec.keyring is not None
    erased, kept = uuid.uuid4(), uuid.uuid4()
    sealed = {
        parent: await codec.with_context(_billing_context(parent)).encode([_plain(f"invoice of {parent}")])
        for parent in (erased, kept)
    }

    result = await steps(settings, sessions, temporal_client).destroy_payload_keys(FamilyRef(parent_id=erased))
    again = await steps(settings, sessions, temporal_client).destroy_payload_keys(FamilyRef(parent_id=erased))

    assert (result.step, result.count) == ("destroy_payload_keys", 1)
    assert again.count == 0
    # This process's cache let go at once: nobody here reads the erased family's payloads any more.
    with pytest.raises(PayloadKeyDestroyed):
        await codec.decode(sealed[erased])
    assert await codec.decode(sealed[kept]) == [_plain(f"invoice of {kept}")]


def _plain(text: str) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(text).encode())


def _billing_context(parent_id: uuid.UUID) -> WorkflowSerializationContext:
    return WorkflowSerializationContext(namespace="default", workflow_id=billing_workflow_id(parent_id))


async def test_stripes_customer_deleted_event_is_stored_redacted(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    """Stripe sends the whole deleted customer (name, email, phone) after an erasure deleted it: none is kept."""
    customer = {
        "id": "cus_erased",
        "object": "customer",
        "deleted": True,
        "email": "gone@family.example",
        "name": "Gone Family",
        "phone": "+16045550199",
        "address": {"line1": "1 Main St"},
    }
    response = await post_event(api, stripe_event("customer.deleted", customer), WEBHOOK_SECRET)
    assert response.status_code == 200, response.text
    async with sessions() as session:
        stored = await session.scalar(select(StripeEvent).where(col(StripeEvent.type) == "customer.deleted"))
    assert stored is not None
    assert stored.payload["data"] == {"object": {"id": "cus_erased", "object": "customer", "deleted": True}}
    for personal in ("gone@family.example", "Gone Family", "6045550199", "Main St"):
        assert personal not in json.dumps(stored.payload)
