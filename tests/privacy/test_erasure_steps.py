"""The erasure's payload-key step: it destroys the family's keys through ``core.payload_keys`` when the codec is in
place, and says there are none when it is not."""

from __future__ import annotations

import sys
import types
import uuid
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from activities.erasure import PAYLOAD_KEYS_MODULE, ErasureActivities
from core.contracts.erasure import FamilyRef
from core.db import SessionFactory
from core.settings import Settings
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
