"""Sealing payloads as a family's workflow would, outside any worker, and the codec server's JSON form."""

from __future__ import annotations

import base64
import json
import os
import uuid
from typing import Any

from temporalio.api.common.v1 import Payload
from temporalio.converter import WorkflowSerializationContext

from core.payload_codec import EncryptionCodec
from core.payload_keys import PayloadKeyring
from core.temporal import billing_workflow_id


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def plain(value: object) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=json.dumps(value).encode())


def family_codec(keyring: PayloadKeyring, parent_id: uuid.UUID) -> EncryptionCodec:
    """The codec as the SDK hands it to the family's billing workflow."""
    return EncryptionCodec(keyring.masters, keyring).with_context(
        WorkflowSerializationContext(namespace="default", workflow_id=billing_workflow_id(parent_id))
    )


def as_json(payloads: list[Payload]) -> dict[str, Any]:
    return {
        "payloads": [
            {
                "metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                "data": base64.b64encode(p.data).decode(),
            }
            for p in payloads
        ]
    }


def from_json(body: dict[str, Any]) -> list[Payload]:
    return [
        Payload(
            metadata={k: base64.b64decode(v) for k, v in p.get("metadata", {}).items()},
            data=base64.b64decode(p.get("data", "")),
        )
        for p in body["payloads"]
    ]
