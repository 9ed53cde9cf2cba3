"""The Temporal worker process: ``python -m workers.main``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import signal

from temporalio.client import Client
from temporalio.worker import Worker

from core.db import create_engine, create_session_factory
from core.logging import configure_logging
from core.mail import Mailer
from core.settings import Settings
from core.temporal import connect_temporal
from workers.registry import WORKFLOWS, WorkerDeps, activity_functions

log = logging.getLogger("cedar.worker")


def build_worker(client: Client, deps: WorkerDeps, task_queue: str | None = None) -> Worker:
    """A worker with every workflow and activity; tests build one on their own task queue."""
    return Worker(
        client,
        task_queue=task_queue or deps.settings.task_queue,
        workflows=WORKFLOWS,
        activities=activity_functions(deps),
        # Synchronous SDK calls (if any) run here instead of blocking the event loop.
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=16),
    )


async def run(settings: Settings) -> None:
    engine = create_engine(settings)
    deps = WorkerDeps(settings=settings, sessions=create_session_factory(engine), mailer=Mailer(settings))
    client = await connect_temporal(settings)
    worker = build_worker(client, deps)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling task queue %s at %s", settings.task_queue, settings.effective_temporal_address)
    async with worker:
        await stop.wait()
    await engine.dispose()


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
