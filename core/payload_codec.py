"""The payload codec: every Temporal payload sealed with AES-256-GCM (docs/privacy.md).

A family's workflows (billing, dunning, re-enrollment by parent; enrollment and teacher transfer by enrollment)
are sealed with that family's (or enrollment's) data key; everything else with the current master key. The key
id travels in the payload's metadata, so any holder of the keys (a worker, the replayer, the codec server) opens
a payload without knowing which workflow it came from.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Self

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.api.common.v1 import Payload
from temporalio.converter import (
    ActivitySerializationContext,
    PayloadCodec,
    SerializationContext,
    WithSerializationContext,
    WorkflowSerializationContext,
)

from core.payload_keys import DataKey, KeyOwner, MasterKeys, PayloadKeyError, PayloadKeyring, seal, unseal
from models import PayloadKeyOwner

ENCODING = b"binary/encrypted"
KEY_ID = "encryption-key-id"
# Key ids in metadata: "master/<id>" for the master key itself, "data/<uuid>" for a family's data key.
MASTER_PREFIX = "master/"
DATA_PREFIX = "data/"

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_OWNERS: list[tuple[re.Pattern[str], PayloadKeyOwner]] = [
    (re.compile(rf"^family-(?:billing|dunning)-({_UUID})$"), PayloadKeyOwner.family),
    (re.compile(rf"^reenrollment-({_UUID})-"), PayloadKeyOwner.family),
    (re.compile(rf"^enrollment-({_UUID})$"), PayloadKeyOwner.enrollment),
    (re.compile(rf"^teacher-transfer-({_UUID})-"), PayloadKeyOwner.enrollment),
]


def key_owner(workflow_id: str | None) -> KeyOwner | None:
    """Whose data key seals the payloads of workflow ``workflow_id`` (None: the master key's)."""
    if not workflow_id:
        return None
    for pattern, kind in _OWNERS:
        match = pattern.match(workflow_id)
        if match:
            return KeyOwner(kind, uuid.UUID(match.group(1)))
    return None


class EncryptionCodec(PayloadCodec, WithSerializationContext):
    """Seals outgoing payloads and opens incoming ones; ``keyring`` None seals with the master key only."""

    def __init__(self, masters: MasterKeys, keyring: PayloadKeyring | None, owner: KeyOwner | None = None) -> None:
        self.masters = masters
        self.keyring = keyring
        self.owner = owner

    def with_context(self, context: SerializationContext) -> Self:
        workflow_id = (
            context.workflow_id
            if isinstance(context, WorkflowSerializationContext | ActivitySerializationContext)
            else None
        )
        return type(self)(self.masters, self.keyring, key_owner(workflow_id))

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        if self.owner is not None and self.keyring is not None:
            data_key = await self.keyring.for_owner(self.owner)
            key_id, key = f"{DATA_PREFIX}{data_key.id}", data_key.key
        else:
            key_id, key = f"{MASTER_PREFIX}{self.masters.current}", self.masters.get(self.masters.current)
        return [
            Payload(
                metadata={"encoding": ENCODING, KEY_ID: key_id.encode()},
                data=seal(key, payload.SerializeToString(), key_id.encode()),
            )
            for payload in payloads
        ]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [(await self.open(payload))[0] for payload in payloads]

    async def open(self, payload: Payload, session: AsyncSession | None = None) -> tuple[Payload, DataKey | None]:
        """One payload opened, with the family data key that opened it; one never sealed (an older history) is
        returned as it is."""
        if payload.metadata.get("encoding") != ENCODING:
            return payload, None
        key_id = payload.metadata.get(KEY_ID, b"").decode()
        data_key: DataKey | None = None
        if key_id.startswith(MASTER_PREFIX):
            key = self.masters.get(key_id.removeprefix(MASTER_PREFIX))
        elif key_id.startswith(DATA_PREFIX) and self.keyring is not None:
            try:
                data_key_id = uuid.UUID(key_id.removeprefix(DATA_PREFIX))
            except ValueError:
                raise PayloadKeyError(f"malformed payload key id {key_id!r}") from None
            data_key = await self.keyring.by_id(data_key_id, session)
            key = data_key.key
        else:
            raise PayloadKeyError(f"no key to open a payload sealed under {key_id!r}")
        opened = Payload()
        opened.ParseFromString(unseal(key, payload.data, key_id.encode()))
        return opened, data_key
