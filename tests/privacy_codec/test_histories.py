"""A family's journey read back from Temporal: the raw server holds ciphertext only, the codec shows the values,
the histories replay through the codec, and erasing the family's keys leaves its histories unreadable while another
family's stay readable."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pytest
from google.protobuf.message import Message
from sqlalchemy import select
from sqlmodel import col
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.api.history.v1 import MarkerRecordedEventAttributes
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer, Worker

from core.contracts.dunning import (
    FAMILY_DUNNING_WORKFLOW,
    QUERY_STATE,
    SIGNAL_INVOICE_FAILED,
    FamilyDunningInput,
    InvoiceFailed,
)
from core.db import SessionFactory, transaction
from core.payload_codec import ENCODING, EncryptionCodec
from core.payload_keys import PayloadKeyDestroyed, PayloadKeyring, destroy_family_keys
from core.settings import Settings
from core.temporal import billing_workflow_id, dunning_workflow_id, enrollment_workflow_id
from devstack.temporal import TemporalDevServer
from models import AuditLog, Role
from tests.dunning.conftest import make_family
from tests.enrollment.helpers import application, enroll, enrollment_row, teacher_by_email, wait_for_state
from tests.privacy_codec.helpers import as_json, from_json
from tests.waiting import eventually
from workers.main import workflow_runner
from workers.registry import WORKFLOWS

MAYA = "maya.lindqvist@cedarheights.example"  # the demo school's piano teacher
OWED, OWED_ELSEWHERE = 98765, 45678


# The SDK's own bookkeeping in markers (a local activity's sequence number and timing, a patch's id), written
# by the SDK's core outside the data converter; the values (a local activity's result) are sealed.
SDK_MARKER_FIELDS = {"data", "patch-data"}


def payloads_of(message: Message) -> Iterator[Payload]:
    """Every payload in a history, except search attributes (plain by design: states and ids only) and the
    SDK's marker bookkeeping."""
    for field, value in message.ListFields():
        if field.message_type is None or field.name == "search_attributes":
            continue
        if field.message_type.GetOptions().map_entry:
            marker = isinstance(message, MarkerRecordedEventAttributes)
            items = [v for k, v in value.items() if not (marker and k in SDK_MARKER_FIELDS)]
        else:
            items = [value] if isinstance(value, Message) else list(value)
        for item in items:
            if isinstance(item, Payload):
                yield item
            elif isinstance(item, Message):
                yield from payloads_of(item)


def failures_of(message: Message) -> Iterator[Failure]:
    for field, value in message.ListFields():
        if field.message_type is None or field.message_type.GetOptions().map_entry:
            continue
        for item in [value] if isinstance(value, Message) else list(value):
            if isinstance(item, Failure):
                yield item
            if isinstance(item, Message):
                yield from failures_of(item)


def all_payloads(history: WorkflowHistory) -> list[Payload]:
    return [p for event in history.events for p in payloads_of(event)]


async def opened(codec: EncryptionCodec, history: WorkflowHistory) -> bytes:
    return b"\n".join(p.data for p in await codec.decode(all_payloads(history)))


async def failed_payment(client: Client, settings: Settings, parent_id: uuid.UUID, amount: int) -> None:
    """What billing does when a charge fails: signal-with-start the family's dunning workflow."""
    await client.start_workflow(
        FAMILY_DUNNING_WORKFLOW,
        FamilyDunningInput(parent_id=parent_id),
        id=dunning_workflow_id(parent_id),
        task_queue=settings.task_queue,
        start_signal=SIGNAL_INVOICE_FAILED,
        start_signal_args=[
            InvoiceFailed(
                parent_id=parent_id,
                invoice_id=uuid.uuid4(),
                stripe_invoice_id=f"in_{uuid.uuid4().hex[:12]}",
                amount_due_minor=amount,
                failed_at=datetime.now(UTC),
                attempt=1,
            )
        ],
    )


async def test_histories_are_ciphertext_on_the_server_and_a_destroyed_family_key_shreds_them(
    api: httpx.AsyncClient,
    demo_data: None,
    run_worker: Callable[..., AbstractAsyncContextManager[Worker]],
    sessions: SessionFactory,
    settings: Settings,
    auth_headers: Callable[..., Any],
    temporal_client: Client,
    temporal_server: TemporalDevServer,
) -> None:
    body = application()
    async with run_worker():
        enrollment_id = await enroll(api, body)
        await wait_for_state(api, enrollment_id, "demo_scheduled")
        maya = await teacher_by_email(sessions, MAYA)
        answer = await api.post(
            f"/api/v1/enrollments/{enrollment_id}/demo-outcome",
            json={"outcome": "continue"},
            headers=await auth_headers(Role.teacher, user_id=maya.user_id),
        )
        assert answer.status_code == 200, answer.text
        await wait_for_state(api, enrollment_id, "active")
        parent_id = (await enrollment_row(sessions, enrollment_id)).parent_id
        assert parent_id is not None
        elsewhere = await make_family(sessions)
        await failed_payment(temporal_client, settings, parent_id, OWED)
        await failed_payment(temporal_client, settings, elsewhere.parent_id, OWED_ELSEWHERE)
        for family in (parent_id, elsewhere.parent_id):
            dunning: WorkflowHandle[Any, Any] = temporal_client.get_workflow_handle(dunning_workflow_id(family))
            await eventually(partial(dunning.query, QUERY_STATE), what="dunning to take the failed payment")
        ids = {
            "enrollment": enrollment_workflow_id(enrollment_id),
            "billing": billing_workflow_id(parent_id),
            "dunning": dunning_workflow_id(parent_id),
            "dunning elsewhere": dunning_workflow_id(elsewhere.parent_id),
        }
        await eventually(
            temporal_client.get_workflow_handle(ids["billing"]).describe, what="the family's billing workflow"
        )
        histories = {name: await temporal_client.get_workflow_handle(wid).fetch_history() for name, wid in ids.items()}

    # A plain client, as `temporal workflow show` reads the server: ciphertext only.
    raw = await Client.connect(temporal_server.address)
    needles = [
        body["parent"]["email"],
        body["parent"]["first_name"],
        body["parent"]["last_name"],
        body["parent"]["phone"],
        body["student"]["first_name"],
        body["student"]["date_of_birth"],
        elsewhere.email,
        str(OWED),
        str(OWED_ELSEWHERE),
    ]
    for name, wid in ids.items():
        raw_history = await raw.get_workflow_handle(wid).fetch_history()
        payloads = all_payloads(raw_history)
        assert payloads, name
        assert {p.metadata["encoding"] for p in payloads} == {ENCODING}, name
        text = raw_history.to_json()
        assert not [needle for needle in needles if needle in text], name
        for payload in payloads:
            assert str(parent_id).encode() not in payload.data
            assert enrollment_id.encode() not in payload.data
        # Failure messages and stack traces travel sealed too.
        for failure in (f for event in raw_history.events for f in failures_of(event)):
            if failure.HasField("application_failure_info"):
                assert failure.message == "Encoded failure", name

    # Through the codec the values are there, and every history replays.
    codec = temporal_client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec)
    assert enrollment_id.encode() in await opened(codec, histories["enrollment"])
    assert str(parent_id).encode() in await opened(codec, histories["billing"])
    assert str(OWED).encode() in await opened(codec, histories["dunning"])
    assert str(OWED_ELSEWHERE).encode() in await opened(codec, histories["dunning elsewhere"])
    replayer = Replayer(
        workflows=WORKFLOWS, workflow_runner=workflow_runner(), data_converter=temporal_client.data_converter
    )
    for history in histories.values():
        await replayer.replay_workflow(history)

    # The UI's codec server opens the enrollment's and the billing's payloads in one request: one audit row, for
    # the family (the enrollment's key was made before the family existed).
    family_payloads = [*all_payloads(histories["enrollment"]), *all_payloads(histories["billing"])]
    # The trace context in headers is sealed with the master key: ids only, no family's data.
    sealed_by_the_family = [p for p in family_payloads if p.metadata["encryption-key-id"].startswith(b"data/")]
    admin = await auth_headers(Role.admin)
    decoded = await api.post("/codec/decode", json=as_json(family_payloads), headers=admin)
    assert decoded.status_code == 200, decoded.text
    assert enrollment_id.encode() in b"".join(p.data for p in from_json(decoded.json()))
    async with sessions() as session:
        audit = list(await session.scalars(select(AuditLog).where(col(AuditLog.action) == "decode")))
    assert [(a.entity_type, a.entity_id, a.after) for a in audit] == [
        ("family_payloads", str(parent_id), {"payloads": len(sealed_by_the_family), "namespace": ""})
    ]

    # Erasure destroys the family's keys (its own and its enrollment's): nobody reads those histories any more.
    async with transaction(sessions) as session:
        assert await destroy_family_keys(session, parent_id) == 2
    fresh = PayloadKeyring(settings, sessions)
    reader = EncryptionCodec(fresh.masters, fresh)
    for name in ("enrollment", "billing", "dunning"):
        with pytest.raises(PayloadKeyDestroyed):
            await opened(reader, histories[name])
    assert str(OWED_ELSEWHERE).encode() in await opened(reader, histories["dunning elsewhere"])
