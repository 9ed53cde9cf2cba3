"""A deploy stops a worker without cancelling what it is doing: polling stops, running activities finish."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from core.settings import Settings
from tests.waiting import eventually
from workers.main import worker_limits


class SlowCall:
    """An activity standing for a Stripe call that is still running when SIGTERM arrives."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()

    @activity.defn(name="test_slow_call")
    async def call(self, label: str) -> str:
        self.started.set()
        await self.release.wait()  # a cancelled activity raises here instead of answering
        return f"{label} done"


@workflow.defn(name="TestSlowCallWorkflow", sandboxed=False)
class SlowCallWorkflow:
    @workflow.run
    async def run(self, label: str) -> str:
        return await workflow.execute_activity(
            "test_slow_call", label, result_type=str, start_to_close_timeout=timedelta(seconds=60)
        )


def _worker(client: Client, settings: Settings, slow: SlowCall) -> Worker:
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[SlowCallWorkflow],
        activities=[slow.call],
        workflow_runner=UnsandboxedWorkflowRunner(),
        **worker_limits(settings),
    )


async def test_an_in_flight_activity_completes_across_a_worker_shutdown(
    make_settings: Callable[..., Settings], temporal_client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="temporalio.worker")
    settings = make_settings(worker_graceful_shutdown=timedelta(seconds=20))
    slow = SlowCall()
    worker = _worker(temporal_client, settings, slow)
    running = asyncio.create_task(worker.run())
    handle = await temporal_client.start_workflow(
        SlowCallWorkflow.run, "charge", id=f"slow-{uuid.uuid4()}", task_queue=settings.task_queue
    )
    await asyncio.wait_for(slow.started.wait(), 20)

    stopping = asyncio.create_task(worker.shutdown())  # what SIGTERM does in workers.main.run

    async def shutdown_begun() -> bool:  # the SDK's own word that polling stops and the grace starts
        return any("Beginning worker shutdown" in r.getMessage() for r in caplog.records)

    await eventually(shutdown_begun, timeout=10, what="the worker's shutdown to begin")
    # Without the grace the SDK has cancelled the activity by now and its answer is never "done".
    slow.release.set()
    await asyncio.wait_for(stopping, 30)
    await asyncio.wait_for(running, 30)

    # The activity's answer reached the server before the worker stopped; a new worker finishes the workflow.
    async with _worker(temporal_client, settings, SlowCall()):
        assert await asyncio.wait_for(handle.result(), 30) == "charge done"


async def test_worker_limits_follow_the_database_pool(make_settings: Callable[..., Settings]) -> None:
    derived = worker_limits(make_settings(db_pool_size=7))
    assert derived["max_concurrent_activities"] == derived["max_concurrent_local_activities"] == 7
    assert derived["graceful_shutdown_timeout"] == timedelta(seconds=30)
    explicit = worker_limits(make_settings(db_pool_size=7, worker_max_concurrent_activities=3))
    assert explicit["max_concurrent_activities"] == 3
