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
from datetime import timedelta
from pathlib import Path
from typing import TypedDict

from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import Worker, WorkerDeploymentConfig
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

import workflows as workflows_package
from activities.stripe import StripeActivities
from core.db import SessionFactory, create_engine, create_session_factory
from core.identity import IdentityService, create_identity_service
from core.logging import configure_logging
from core.mail import Mailer
from core.metrics import SdkMetrics, draining, serving_metrics, worker_registry
from core.payload_keys import PayloadKeyring
from core.process import exit_after
from core.settings import Settings
from core.stripe import create_stripe_client
from core.temporal import connect_temporal, create_runtime
from core.tracing import create_tracer_provider, tracer_of
from workers.registry import WORKFLOWS, WorkerDeps, activity_functions, bound_activities
from workers.stripe_forwarder import StripeEventForwarder

log = logging.getLogger("cedar.worker")


def build_identity(settings: Settings) -> IdentityService:
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


class WorkerLimits(TypedDict):
    max_concurrent_activities: int
    max_concurrent_local_activities: int
    graceful_shutdown_timeout: timedelta


def worker_limits(settings: Settings) -> WorkerLimits:
    """What every Worker is built with: activity slots no more than the database pool (most activities hold a
    connection), and the grace a stopping worker gives its running activities."""
    slots = settings.worker_activity_slots
    return WorkerLimits(
        max_concurrent_activities=slots,
        max_concurrent_local_activities=slots,
        graceful_shutdown_timeout=settings.worker_graceful_shutdown,
    )


def deployment_config(settings: Settings) -> WorkerDeploymentConfig | None:
    """This release's version of the worker deployment, when ``worker_build_id`` is set.

    Workflows auto-upgrade: a running workflow moves to the new current version at its next task, so one version
    serves a queue at a time and a change still needs ``workflow.patched`` (pinning would keep a semester's
    enrollments on old workers).
    """
    if not settings.worker_build_id:
        return None
    version = WorkerDeploymentVersion(
        deployment_name=settings.worker_deployment_name or settings.task_queue, build_id=settings.worker_build_id
    )
    return WorkerDeploymentConfig(
        version=version, use_worker_versioning=True, default_versioning_behavior=VersioningBehavior.AUTO_UPGRADE
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
        deployment_config=deployment_config(deps.settings),
        **worker_limits(deps.settings),
    )


def build_stripe_worker(client: Client, deps: WorkerDeps) -> Worker | None:
    """Billing's Stripe calls, on their own queue at the rate Stripe allows (the server holds the limit for every
    worker of the queue); None while ``stripe_task_queue`` is unset."""
    settings = deps.settings
    if not settings.stripe_task_queue:
        return None
    stripe_calls = bound_activities(StripeActivities(deps.stripe, settings, deps.sessions))
    return Worker(
        client,
        task_queue=settings.stripe_task_queue,
        activities=stripe_calls,
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=settings.worker_activity_slots),
        max_task_queue_activities_per_second=settings.stripe_calls_per_second,
        deployment_config=deployment_config(settings),
        **worker_limits(settings),
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
    # Recorded only where a port serves them.
    serve_metrics = settings.effective_sdk_metrics and settings.worker_metrics_port is not None
    sdk_metrics = SdkMetrics() if serve_metrics else None
    provider = create_tracer_provider(settings, "cedar-worker")
    client = await connect_temporal(
        settings,
        keyring=PayloadKeyring(settings, sessions),
        runtime=create_runtime(sdk_metrics),
        tracer=tracer_of(provider),
    )
    deps = build_deps(settings, sessions, client)
    queues = worker_task_queues(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    log.info("worker polling task queues %s at %s", ", ".join(queues), settings.effective_temporal_address)
    workers = [build_worker(client, deps, queue) for queue in queues]
    stripe_worker = build_stripe_worker(client, deps)
    if stripe_worker is not None:
        log.info("Stripe calls on %s, %s/s at most", settings.stripe_task_queue, settings.stripe_calls_per_second)
        workers.append(stripe_worker)
    try:
        async with contextlib.AsyncExitStack() as stack:
            if sdk_metrics is not None and settings.worker_metrics_port is not None:
                await stack.enter_async_context(draining(sdk_metrics))
                registry, host = worker_registry(sdk_metrics), settings.worker_metrics_host
                port = stack.enter_context(serving_metrics(registry, host, settings.worker_metrics_port))
                log.info("worker metrics on http://%s:%s/metrics", host, port)
            for worker in workers:
                await stack.enter_async_context(worker)
            await stack.enter_async_context(StripeEventForwarder(settings, deps.sessions, client).running())
            await stop.wait()
            log.info("worker stopping: running activities have %s to finish", settings.worker_graceful_shutdown)
            # Together, not one queue after the other: every worker stops polling now and the grace runs once.
            await asyncio.gather(*(worker.shutdown() for worker in workers))
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
        provider.shutdown()  # sends the spans still queued
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
