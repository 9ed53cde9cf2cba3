"""The codec server's work: open sealed payloads for the Temporal UI (auditing each family read), seal new ones."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.api.common.v1 import Payload

from api.principal import Principal
from core.audit import record_audit
from core.payload_codec import EncryptionCodec
from core.payload_keys import PayloadKeyDestroyed, PayloadKeyError, PayloadKeyring

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
            if data_key.parent_id is not None:
                entity = ("family_payloads", data_key.parent_id)
            else:  # an enrollment whose family is not known yet
                entity = ("enrollment_payloads", data_key.owner.id)
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


async def encode(keyring: PayloadKeyring, payloads: Sequence[Payload]) -> list[Payload]:
    """Sealed with the current master key: the UI's own inputs belong to no family's key."""
    return await EncryptionCodec(keyring.masters, None).encode(payloads)
