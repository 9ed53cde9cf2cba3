"""The erasure's payload-key step: it destroys the family's keys through ``core.payload_keys`` when the codec is in
place, and says there are none when it is not."""

from __future__ import annotations

import json
import sys
import types
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio.client import Client

from activities.erasure import PAYLOAD_KEYS_MODULE, ErasureActivities
from core.contracts.erasure import FamilyRef
from core.db import SessionFactory
from core.settings import Settings
from models import StripeEvent
from tests.billing.conftest import post_event, stripe_event
from tests.conftest import WEBHOOK_SECRET
from workers.main import build_deps


def steps(settings: Settings, sessions: SessionFactory, temporal_client: Client) -> ErasureActivities:
    deps = build_deps(settings, sessions, temporal_client)
    return ErasureActivities(settings, sessions, temporal_client, deps.stripe, deps.identity)


async def test_without_the_codec_there_are_no_payload_keys(
    settings: Settings, sessions: SessionFactory, temporal_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, PAYLOAD_KEYS_MODULE, None)  # an import of it fails as if absent
    result = await steps(settings, sessions, temporal_client).destroy_payload_keys(FamilyRef(parent_id=uuid.uuid4()))
    assert (result.step, result.count, result.note) == ("destroy_payload_keys", 0, "no payload keys")


async def test_with_the_codec_the_familys_keys_are_destroyed(
    settings: Settings, sessions: SessionFactory, temporal_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    destroyed: list[Any] = []

    async def destroy_family_keys(session: AsyncSession, parent_id: uuid.UUID) -> int:
        destroyed.append((type(session), parent_id))
        return 2

    keys = types.ModuleType(PAYLOAD_KEYS_MODULE)
    keys.destroy_family_keys = destroy_family_keys  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, PAYLOAD_KEYS_MODULE, keys)
    parent_id = uuid.uuid4()
    result = await steps(settings, sessions, temporal_client).destroy_payload_keys(FamilyRef(parent_id=parent_id))
    assert (result.count, result.note) == (2, "")
    assert destroyed == [(AsyncSession, parent_id)]


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
