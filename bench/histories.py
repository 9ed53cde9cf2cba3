"""What the Temporal server keeps for a run: every workflow's history, counted (events, bytes) and who ran it."""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client


@dataclass
class Histories:
    workflows: int = 0
    events: int = 0
    bytes: int = 0  # the events' serialized size, as the server stores them
    by_type: Counter[str] = field(default_factory=Counter)  # workflow type -> executions
    identities: Counter[str] = field(default_factory=Counter)  # worker identity -> workflow and activity tasks


async def scan_histories(client: Client, query: str = "", concurrency: int = 8) -> Histories:
    """Every workflow matching `query` (all by default), its history fetched once."""
    totals = Histories()
    executions = [e async for e in client.list_workflows(query or None)]
    gate = asyncio.Semaphore(concurrency)

    async def one(workflow_id: str, run_id: str) -> None:
        async with gate:
            handle = client.get_workflow_handle(workflow_id, run_id=run_id)
            async for event in handle.fetch_history_events():
                totals.events += 1
                totals.bytes += event.ByteSize()
                if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
                    totals.identities[event.workflow_task_started_event_attributes.identity] += 1
                elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    totals.identities[event.activity_task_started_event_attributes.identity] += 1

    for execution in executions:
        totals.workflows += 1
        totals.by_type[execution.workflow_type] += 1
    await asyncio.gather(*(one(e.id, e.run_id) for e in executions))
    return totals


def identity_pid(identity: str) -> int | None:
    """The process id in a worker identity (the SDK's default is ``pid@host``)."""
    head = identity.split("@", 1)[0]
    return int(head) if head.isdigit() else None
