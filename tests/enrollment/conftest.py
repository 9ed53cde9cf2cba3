"""Enrollment tests: settings per test (``@pytest.mark.enrollment_settings(...)``) and a worker running the
enrollment workflow beside a stand-in for billing's family workflow, with activities replaceable by name."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from core.settings import Settings
from tests.enrollment.billing_stand_in import StandInBillingWorkflow
from tests.worker_exit import running
from workers.registry import WorkerDeps, activity_functions
from workflows.enrollment import EnrollmentWorkflow


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "enrollment_settings(**overrides): settings for this enrollment test")


@pytest.fixture
def settings(make_settings: Callable[..., Settings], request: pytest.FixtureRequest) -> Settings:
    marker = request.node.get_closest_marker("enrollment_settings")
    return make_settings(**(marker.kwargs if marker else {}))


def activity_name(function: Callable[..., Any]) -> str:
    return str(function.__temporal_activity_definition.name)  # type: ignore[attr-defined]


EnrollmentWorker = Callable[..., AbstractAsyncContextManager[Worker]]


@pytest.fixture
def enrollment_worker(temporal_client: Client, worker_deps: WorkerDeps, settings: Settings) -> EnrollmentWorker:
    """``async with enrollment_worker(replace=[stub, ...]):`` a real worker; each stub replaces the activity of
    its name (``@activity.defn(name=...)``), the way a failure or a pause is injected into one step. ``deps``
    runs the activities with other settings (delays computed by the test)."""

    @asynccontextmanager
    async def run(
        replace: list[Callable[..., Any]] | None = None, deps: WorkerDeps | None = None
    ) -> AsyncIterator[Worker]:
        stubs = {activity_name(stub): stub for stub in replace or []}
        functions = [f for f in activity_functions(deps or worker_deps) if activity_name(f) not in stubs]
        worker = Worker(
            temporal_client,
            task_queue=settings.task_queue,
            workflows=[EnrollmentWorkflow, StandInBillingWorkflow],
            activities=[*functions, *stubs.values()],
        )
        async with running(worker):
            yield worker

    return run
