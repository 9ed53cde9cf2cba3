"""The Temporal worker process: ``python -m workers.main``."""

from __future__ import annotations

import asyncio
import compileall
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import signal
from pathlib import Path

from temporalio.client import Client
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows as workflows_package
from core.db import SessionFactory, create_engine, create_session_factory
from core.identity import IdentityProvider, create_identity_service
from core.logging import configure_logging
from core.mail import Mailer
from core.payload_keys import PayloadKeyring
from core.process import exit_after
from core.settings import Settings
from core.stripe import create_stripe_client
from core.temporal import connect_temporal
from workers.registry import WORKFLOWS, WorkerDeps, activity_functions
from workers.schedules import ensure_schedules
from workers.stripe_forwarder import StripeEventForwarder

log = logging.getLogger("cedar.worker")


def build_identity(settings: Settings) -> IdentityProvider:
    """Supabase Auth when ``supabase_url`` is set, else the built-in provider (accounts in our database)."""
    return create_identity_service(settings)


def build_deps(settings: Settings, sessions: SessionFactory, client: Client) -> WorkerDeps:
    return WorkerDeps(
        settings=settings,
        sessions=sessions,
        mailer=Mailer(settings),
        stripe=create_stripe_client(settings),
        identity=build_identity(settings),
        temporal=client,
    )


def build_worker(client: Client, deps: WorkerDeps, task_queue: str | None = None) -> Worker:
    """A worker with every workflow and activity; tests build one on their own task queue."""
    return Worker(
        client,
        task_queue=task_queue or deps.settings.task_queue,
        workflows=WORKFLOWS,
        activities=activity_functions(deps),
        # Synchronous SDK calls (if any) run here instead of blocking the event loop.
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=16),
        workflow_runner=workflow_runner(),
    )


def cache_workflow_bytecode() -> None:
    """Writes ``workflows/__pycache__`` even where ``PYTHONDONTWRITEBYTECODE`` is set.

    The sandbox imports a workflow's module afresh for every workflow run; with no cached bytecode each import
    compiles the source again, a real share of a busy worker's CPU. A read-only install (bytecode shipped or not)
    is left as it is.
    """
    compileall.compile_dir(Path(workflows_package.__file__).parent, quiet=2, workers=1)


def workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox, minus three costs.

    Workflow modules are imported from cached bytecode; our own pure modules are passed through instead of
    re-imported per workflow run; and ``ZoneInfo`` is a real tzinfo inside workflows (the default restricted
    proxy is not one, so ``datetime(..., tzinfo=ZoneInfo(...))`` would fail). Zone data is read once and
    cached, which keeps workflows deterministic.
    """
    cache_workflow_bytecode()
    defaults = SandboxRestrictions.default
    return SandboxedWorkflowRunner(
        restrictions=dataclasses.replace(
            defaults,
            invalid_module_members=defaults.invalid_module_members.with_child_unrestricted("zoneinfo", "ZoneInfo"),
        ).with_passthrough_modules("domain", "models", "core", "pydantic", "sqlmodel", "sqlalchemy")
    )


def worker_task_queues(settings: Settings) -> list[str]:
    """What a worker process polls: the main queue (billing, dunning, schedules) and the enrollments' queue
    (which the API processes' own workers poll too), once each when settings make them one."""
    return list(dict.fromkeys([settings.task_queue, settings.enrollment_queue]))


async def run(settings: Settings) -> None:
    engine = create_engine(settings)
    sessions = create_session_factory(engine)
    client = await connect_temporal(settings, keyring=PayloadKeyring(settings, sessions))
    deps = build_deps(settings, sessions, client)
    queues = worker_task_queues(settings)
    await ensure_schedules(client, settings)  # idempotent: creates or updates every Temporal Schedule
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling task queues %s at %s", ", ".join(queues), settings.effective_temporal_address)
    async with contextlib.AsyncExitStack() as workers:
        for queue in queues:
            await workers.enter_async_context(build_worker(client, deps, queue))
        await workers.enter_async_context(StripeEventForwarder(settings, deps.sessions, client).running())
        await stop.wait()
    await engine.dispose()


def lower_priority(settings: Settings) -> None:
    """Takes ``settings.worker_nice``. Linux keeps niceness per thread and new threads inherit it, so this runs
    before any thread exists (Temporal's runtime, the executors)."""
    if settings.worker_nice:
        os.nice(settings.worker_nice)


def main() -> None:
    settings = Settings()
    lower_priority(settings)
    configure_logging(settings)
    asyncio.run(run(settings))
    exit_after(0)


if __name__ == "__main__":
    main()
