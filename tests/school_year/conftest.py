"""School-year tests: settings per test (``@pytest.mark.school_year_settings(...)``) and a worker running the
enrollment and re-enrollment workflows beside a stand-in for billing's family workflow."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta

import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from core.settings import Settings
from tests.school_year.billing_stand_in import SchoolYearBillingStandIn
from tests.worker_exit import running
from workers.registry import WorkerDeps, activity_functions
from workflows.enrollment import EnrollmentWorkflow
from workflows.reenrollment import ReenrollmentOpeningWorkflow, ReenrollmentWorkflow

SchoolYearWorker = Callable[[], AbstractAsyncContextManager[Worker]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "school_year_settings(**overrides): settings for this school-year test")


@pytest.fixture
def settings(make_settings: Callable[..., Settings], request: pytest.FixtureRequest) -> Settings:
    marker = request.node.get_closest_marker("school_year_settings")
    # Demos in the past: the tests decide the outcome at once, and the weekly lessons start now.
    overrides = {"demo_min_notice": -timedelta(days=7), **(marker.kwargs if marker else {})}
    return make_settings(**overrides)


@pytest.fixture
def school_year_worker(temporal_client: Client, worker_deps: WorkerDeps, settings: Settings) -> SchoolYearWorker:
    @asynccontextmanager
    async def run() -> AsyncIterator[Worker]:
        worker = Worker(
            temporal_client,
            task_queue=settings.task_queue,
            workflows=[EnrollmentWorkflow, ReenrollmentWorkflow, ReenrollmentOpeningWorkflow, SchoolYearBillingStandIn],
            activities=activity_functions(worker_deps),
        )
        async with running(worker):
            yield worker

    return run
