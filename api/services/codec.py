"""The codec server's work: open sealed payloads for the Temporal UI (auditing each family read), seal new ones."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio.api.common.v1 import Payload

from api.principal import Principal
from core.audit import record_audit
from core.payload_codec import EncryptionCodec
from core.payload_keys import DataKey, PayloadKeyDestroyed, PayloadKeyError, PayloadKeyring
from models import Enrollment

UNREADABLE = "cedar-unreadable"


@dataclass(frozen=True)
class CodecCaller:
    """Who asked: an admin, or (development only) the dev server's UI, which cannot sign in."""

    principal: Principal | None
    namespace: str


def unreadable(reason: str, why: str) -> Payload:
    """What the UI shows instead of a payload nobody can open: a JSON string saying why, marked in metadata."""
    return Payload(
        metadata={"encoding": b"json/plain", UNREADABLE: reason.encode()},
        data=json.dumps(f"unreadable: {why}").encode(),
    )


async def decode(
    session: AsyncSession,
    keyring: PayloadKeyring,
    caller: CodecCaller,
    payloads: Sequence[Payload],
    request_id: str | None,
) -> list[Payload]:
    codec = EncryptionCodec(keyring.masters, keyring)
    opened: list[Payload] = []
    read: dict[tuple[str, uuid.UUID], int] = {}  # (entity type, id) -> payloads of it opened in this request
    families: dict[uuid.UUID, uuid.UUID | None] = {}  # enrollment -> its family, read once per request
    for payload in payloads:
        try:
            plain, data_key = await codec.open(payload, session)
        except PayloadKeyDestroyed as error:
            opened.append(unreadable("key-destroyed", str(error)))
            continue
        except PayloadKeyError as error:
            opened.append(unreadable("key-unavailable", str(error)))
            continue
        opened.append(plain)
        if data_key is not None:
            entity = await _whose(session, data_key, families)
            read[entity] = read.get(entity, 0) + 1
    principal = caller.principal
    for (entity_type, entity_id), count in read.items():
        await record_audit(
            session,
            actor_user_id=principal.user_id if principal else None,
            actor_role=str(principal.role) if principal else "public",
            action="decode",
            entity_type=entity_type,
            entity_id=entity_id,
            after={"payloads": count, "namespace": caller.namespace},
            request_id=request_id,
        )
    return opened


async def _whose(
    session: AsyncSession, data_key: DataKey, families: dict[uuid.UUID, uuid.UUID | None]
) -> tuple[str, uuid.UUID]:
    """The family a data key's payloads belong to, for the audit row; an enrollment's until its family exists."""
    if data_key.parent_id is not None:
        return "family_payloads", data_key.parent_id
    enrollment_id = data_key.owner.id
    if enrollment_id not in families:
        families[enrollment_id] = await session.scalar(
            select(col(Enrollment.parent_id)).where(col(Enrollment.id) == enrollment_id)
        )
    parent_id = families[enrollment_id]
    return ("family_payloads", parent_id) if parent_id is not None else ("enrollment_payloads", enrollment_id)


async def encode(keyring: PayloadKeyring, payloads: Sequence[Payload]) -> list[Payload]:
    """Sealed with the current master key: the UI's own inputs belong to no family's key."""
    return await EncryptionCodec(keyring.masters, None).encode(payloads)
