"""Master and data keys: every payload sealed, rotation keeps old payloads readable, a destroyed family key
shreds that family's payloads only."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory, transaction
from core.payload_codec import ENCODING, KEY_ID, EncryptionCodec, key_owner
from core.payload_keys import KeyOwner, PayloadKeyDestroyed, PayloadKeyError, PayloadKeyring, destroy_family_keys
from core.settings import Settings
from models import PayloadKey, PayloadKeyOwner
from tests.privacy_codec.helpers import family_codec, new_key, plain


def test_workflow_ids_name_the_family_or_enrollment_whose_key_seals_them() -> None:
    parent, enrollment = uuid.uuid4(), uuid.uuid4()
    family = KeyOwner(PayloadKeyOwner.family, parent)
    assert key_owner(f"family-billing-{parent}") == family
    assert key_owner(f"family-dunning-{parent}") == family
    assert key_owner(f"reenrollment-{parent}-{uuid.uuid4()}") == family
    assert key_owner(f"enrollment-{enrollment}") == KeyOwner(PayloadKeyOwner.enrollment, enrollment)
    assert key_owner(f"teacher-transfer-{enrollment}-2026-09-01") == KeyOwner(PayloadKeyOwner.enrollment, enrollment)
    assert key_owner("cedar-dunning-sweep") is None
    assert key_owner(None) is None


async def test_payloads_are_sealed_and_rotation_keeps_older_ones_readable(
    make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    key_a, key_b = new_key(), new_key()
    under_a = make_settings(payload_keys={"a": key_a}, payload_key_current="a")
    parent = uuid.uuid4()
    keyring_a = PayloadKeyring(under_a, sessions)
    family_a = await family_codec(keyring_a, parent).encode([plain({"amount_due_minor": 43210})])
    school_a = await EncryptionCodec(keyring_a.masters, keyring_a).encode([plain("sweep")])
    for sealed in (*family_a, *school_a):
        assert sealed.metadata["encoding"] == ENCODING
        assert b"43210" not in sealed.data
        assert b"sweep" not in sealed.data
    assert family_a[0].metadata[KEY_ID].startswith(b"data/")
    assert school_a[0].metadata[KEY_ID] == b"master/a"

    rotated = make_settings(payload_keys={"a": key_a, "b": key_b}, payload_key_current="b")
    keyring_b = PayloadKeyring(rotated, sessions)
    codec_b = EncryptionCodec(keyring_b.masters, keyring_b)
    assert await codec_b.decode([*family_a, *school_a]) == [plain({"amount_due_minor": 43210}), plain("sweep")]
    assert (await codec_b.encode([plain("sweep")]))[0].metadata[KEY_ID] == b"master/b"
    # A new family's data key is wrapped by the current master key.
    other = uuid.uuid4()
    await family_codec(keyring_b, other).encode([plain(1)])
    async with sessions() as session:
        masters = {row.owner_id: row.master_key_id for row in await session.scalars(select(PayloadKey))}
    assert masters == {parent: "a", other: "b"}

    # Once key a is no longer listed, what it sealed cannot be opened.
    retired = make_settings(payload_keys={"b": key_b}, payload_key_current="b")
    keyring_retired = PayloadKeyring(retired, sessions)
    with pytest.raises(PayloadKeyError, match="master key 'a' is not configured"):
        await EncryptionCodec(keyring_retired.masters, keyring_retired).decode(school_a)
    with pytest.raises(PayloadKeyError, match="master key 'a' is not configured"):
        await EncryptionCodec(keyring_retired.masters, keyring_retired).decode(family_a)


async def test_a_destroyed_family_key_shreds_that_family_only(
    make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    settings = make_settings(payload_key_cache_ttl=timedelta(minutes=5))
    keyring = PayloadKeyring(settings, sessions)
    erased, kept = uuid.uuid4(), uuid.uuid4()
    erased_payloads = await family_codec(keyring, erased).encode([plain("erased family's invoice")])
    kept_payloads = await family_codec(keyring, kept).encode([plain("kept family's invoice")])
    codec = EncryptionCodec(keyring.masters, keyring)
    assert await codec.decode(erased_payloads) == [plain("erased family's invoice")]

    async with transaction(sessions) as session:
        assert await destroy_family_keys(session, erased) == 1
    async with transaction(sessions) as session:
        assert await destroy_family_keys(session, erased) == 0
    keyring.forget_family(erased)
    for reader in (codec, EncryptionCodec(keyring.masters, PayloadKeyring(settings, sessions))):
        with pytest.raises(PayloadKeyDestroyed, match="destroyed"):
            await reader.decode(erased_payloads)
        assert await reader.decode(kept_payloads) == [plain("kept family's invoice")]
    async with sessions() as session:
        row = await session.scalar(select(PayloadKey).where(col(PayloadKey.owner_id) == erased))
    assert row is not None
    assert row.destroyed_at is not None
    assert row.wrapped_key == b""


async def test_a_process_holding_a_key_stops_reading_once_its_cache_expires(
    make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    settings = make_settings(payload_key_cache_ttl=timedelta(milliseconds=1))
    keyring = PayloadKeyring(settings, sessions)
    parent = uuid.uuid4()
    sealed = await family_codec(keyring, parent).encode([plain("x")])
    async with transaction(sessions) as session:
        await destroy_family_keys(session, parent)
    with pytest.raises(PayloadKeyDestroyed):
        await EncryptionCodec(keyring.masters, keyring).decode(sealed)


def test_production_takes_keys_from_a_file_and_refuses_the_development_key(tmp_path: Path) -> None:
    from core.payload_keys import master_keys
    from core.settings import DEV_PAYLOAD_KEY
    from tests.foundation.test_production_settings import production

    keys = tmp_path / "payload-keys.json"
    real = new_key()
    keys.write_text(json.dumps({"2026-01": real}))
    settings = production(payload_keys_file=keys, payload_keys={}, payload_key_current="2026-01")
    assert master_keys(settings).current == "2026-01"
    keys.write_text(json.dumps({"2026-01": DEV_PAYLOAD_KEY}))
    with pytest.raises(ValueError, match="development payload key"):
        master_keys(settings)
    keys.write_text(json.dumps({"2025-01": real}))
    with pytest.raises(ValueError, match="CEDAR_PAYLOAD_KEY_CURRENT"):
        master_keys(settings)
