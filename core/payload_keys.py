"""Keys for Temporal payloads: the master keys from settings, and per-family data keys kept in PostgreSQL.

A family's payloads are sealed with a data key of its own, itself sealed (wrapped) by a master key and stored in
``payload_keys``. Destroying the family's data keys (:func:`destroy_family_keys`) makes those payloads unreadable
by anyone, wherever copies of them live (docs/privacy.md, "Keys and rotation").
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import SessionFactory, transaction
from core.settings import DEV_PAYLOAD_KEY, Settings
from models import PayloadKeyOwner

KEY_BYTES = 32
NONCE_BYTES = 12


class PayloadKeyError(ValueError):
    """A payload cannot be opened: its key is unknown, destroyed, or the ciphertext was altered."""


class PayloadKeyDestroyed(PayloadKeyError):
    """The payload's data key was destroyed (its family was erased): nobody can read it any more."""


def seal(key: bytes, plaintext: bytes, associated: bytes) -> bytes:
    """AES-256-GCM with a fresh random nonce, which leads the result."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, associated)


def unseal(key: bytes, sealed: bytes, associated: bytes) -> bytes:
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
    except Exception as error:  # cryptography's InvalidTag carries no message
        raise PayloadKeyError("payload cannot be decrypted: wrong key or altered ciphertext") from error


@dataclass(frozen=True)
class MasterKeys:
    """The master keys by id; ``current`` seals new payloads and new data keys."""

    keys: dict[str, bytes]
    current: str

    def get(self, key_id: str) -> bytes:
        try:
            return self.keys[key_id]
        except KeyError:
            raise PayloadKeyError(f"master key {key_id!r} is not configured (CEDAR_PAYLOAD_KEYS)") from None


def master_keys(settings: Settings) -> MasterKeys:
    """The master keys from ``CEDAR_PAYLOAD_KEYS_FILE`` (a JSON object id -> base64) or ``CEDAR_PAYLOAD_KEYS``."""
    if settings.payload_keys_file is not None:
        try:
            raw = json.loads(settings.payload_keys_file.read_text())
        except (OSError, ValueError) as error:
            raise ValueError(f"CEDAR_PAYLOAD_KEYS_FILE: cannot read {settings.payload_keys_file}: {error}") from error
        if not isinstance(raw, dict):
            raise ValueError("CEDAR_PAYLOAD_KEYS_FILE must hold a JSON object of key id -> base64 key")
        encoded = {str(k): str(v) for k, v in raw.items()}
    else:
        encoded = {k: v.get_secret_value() for k, v in settings.payload_keys.items()}
    keys: dict[str, bytes] = {}
    for key_id, value in encoded.items():
        try:
            key = base64.b64decode(value, validate=True)
        except binascii.Error as error:
            raise ValueError(f"payload key {key_id!r} is not base64") from error
        if len(key) != KEY_BYTES:
            raise ValueError(f"payload key {key_id!r} is not {KEY_BYTES} bytes")
        if settings.environment == "production" and value == DEV_PAYLOAD_KEY:
            raise ValueError("refusing to run in production with the development payload key")
        keys[key_id] = key
    if settings.payload_key_current not in keys:
        raise ValueError(f"CEDAR_PAYLOAD_KEY_CURRENT {settings.payload_key_current!r} is not a listed payload key")
    return MasterKeys(keys, settings.payload_key_current)


@dataclass(frozen=True)
class KeyOwner:
    """Whose data key seals a workflow's payloads."""

    kind: PayloadKeyOwner
    id: uuid.UUID


@dataclass(frozen=True)
class DataKey:
    id: uuid.UUID
    key: bytes
    parent_id: uuid.UUID | None
    owner: KeyOwner


K = TypeVar("K")
V = TypeVar("V")


class _TtlCache(Generic[K, V]):
    """Least recently used entries, each trusted for ``ttl`` seconds."""

    def __init__(self, size: int, ttl: float) -> None:
        self._size, self._ttl = size, ttl
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()

    def get(self, key: K) -> V | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if time.monotonic() - entry[0] > self._ttl:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)

    def drop_where(self, predicate: Callable[[V], bool]) -> None:
        for key in [k for k, (_, v) in self._entries.items() if predicate(v)]:
            del self._entries[key]


class PayloadKeyring:
    """Data keys for the codec: created on first use, unwrapped once and held briefly in memory.

    Every database access is an async short read (or one insert), so the codec never blocks the event loop.
    """

    def __init__(self, settings: Settings, sessions: SessionFactory, masters: MasterKeys | None = None) -> None:
        self.masters = masters or master_keys(settings)
        self._sessions = sessions
        ttl = settings.payload_key_cache_ttl.total_seconds()
        self._by_id: _TtlCache[uuid.UUID, DataKey] = _TtlCache(settings.payload_key_cache_size, ttl)
        self._by_owner: _TtlCache[KeyOwner, DataKey] = _TtlCache(settings.payload_key_cache_size, ttl)

    async def for_owner(self, owner: KeyOwner) -> DataKey:
        """The owner's live data key, made (and stored wrapped) if it has none."""
        cached = self._by_owner.get(owner)
        if cached is not None:
            return cached
        async with transaction(self._sessions) as session:
            row = await _live_key(session, owner)
            if row is None:
                parent_id = (
                    owner.id if owner.kind == PayloadKeyOwner.family else await _enrollment_parent(session, owner.id)
                )
                key = AESGCM.generate_key(bit_length=256)
                master_id = self.masters.current
                key_id = uuid.uuid4()
                wrapped = seal(self.masters.get(master_id), key, key_id.bytes)
                # A concurrent maker may win: its key is then the one read back.
                await session.execute(
                    text(
                        "INSERT INTO payload_keys (id, owner_kind, owner_id, parent_id, wrapped_key, master_key_id,"
                        " created_at) VALUES (:id, :kind, :owner, :parent, :wrapped, :master, :now)"
                        " ON CONFLICT (owner_kind, owner_id) WHERE destroyed_at IS NULL DO NOTHING"
                    ),
                    {
                        "id": key_id,
                        "kind": str(owner.kind),
                        "owner": owner.id,
                        "parent": parent_id,
                        "wrapped": wrapped,
                        "master": master_id,
                        "now": datetime.now(UTC),
                    },
                )
                row = await _live_key(session, owner)
                if row is None:
                    raise PayloadKeyError(f"no data key for {owner.kind} {owner.id}")
        data_key = self._unwrap(row)
        self._by_owner.put(owner, data_key)
        self._by_id.put(data_key.id, data_key)
        return data_key

    async def by_id(self, key_id: uuid.UUID, session: AsyncSession | None = None) -> DataKey:
        """The data key ``key_id``; :class:`PayloadKeyDestroyed` once its family was erased.

        A request that holds a session passes it, so it never waits on a second connection."""
        cached = self._by_id.get(key_id)
        if cached is not None:
            return cached
        if session is not None:
            row = await _key_row(session, key_id)
        else:
            async with self._sessions() as own:
                row = await _key_row(own, key_id)
        if row is None:
            raise PayloadKeyError(f"data key {key_id} is unknown")
        data_key = self._unwrap(row)
        self._by_id.put(key_id, data_key)
        return data_key

    def forget_family(self, parent_id: uuid.UUID) -> None:
        """Drops this process's copies of a family's keys (after :func:`destroy_family_keys` committed)."""
        self._by_id.drop_where(lambda key: key.parent_id == parent_id or key.owner.id == parent_id)
        self._by_owner.drop_where(lambda key: key.parent_id == parent_id or key.owner.id == parent_id)

    def _unwrap(self, row: Row[Any]) -> DataKey:
        key_id, kind, owner_id, parent_id, wrapped, master_id, destroyed_at = tuple(row)
        if destroyed_at is not None:
            raise PayloadKeyDestroyed(f"data key {key_id} was destroyed on {destroyed_at:%Y-%m-%d}: payload unreadable")
        key = unseal(self.masters.get(master_id), bytes(wrapped), key_id.bytes)
        return DataKey(key_id, key, parent_id, KeyOwner(PayloadKeyOwner(kind), owner_id))


async def _key_row(session: AsyncSession, key_id: uuid.UUID) -> Row[Any] | None:
    return (
        await session.execute(
            text(
                "SELECT id, owner_kind, owner_id, parent_id, wrapped_key, master_key_id, destroyed_at"
                " FROM payload_keys WHERE id = :id"
            ),
            {"id": key_id},
        )
    ).first()


async def _live_key(session: AsyncSession, owner: KeyOwner) -> Row[Any] | None:
    return (
        await session.execute(
            text(
                "SELECT id, owner_kind, owner_id, parent_id, wrapped_key, master_key_id, destroyed_at"
                " FROM payload_keys WHERE owner_kind = :kind AND owner_id = :owner AND destroyed_at IS NULL"
            ),
            {"kind": str(owner.kind), "owner": owner.id},
        )
    ).first()


async def _enrollment_parent(session: AsyncSession, enrollment_id: uuid.UUID) -> uuid.UUID | None:
    result = await session.execute(text("SELECT parent_id FROM enrollments WHERE id = :id"), {"id": enrollment_id})
    parent_id: uuid.UUID | None = result.scalar_one_or_none()
    return parent_id


async def destroy_family_keys(session: AsyncSession, parent_id: uuid.UUID) -> int:
    """Destroys every data key of a family (its own and its enrollments'), in the caller's transaction.

    The wrapped key bytes are overwritten, so no master key can bring them back; the row stays as a tombstone that
    tells the codec why a payload is unreadable. Returns how many keys were destroyed.
    """
    result = await session.execute(
        text(
            "UPDATE payload_keys SET destroyed_at = :now, wrapped_key = ''::bytea,"
            " parent_id = COALESCE(parent_id, :parent)"
            " WHERE destroyed_at IS NULL AND ("
            "   parent_id = :parent"
            "   OR (owner_kind = 'family' AND owner_id = :parent)"
            "   OR (owner_kind = 'enrollment' AND owner_id IN (SELECT id FROM enrollments WHERE parent_id = :parent))"
            " )"
        ),
        {"now": datetime.now(UTC), "parent": parent_id},
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
