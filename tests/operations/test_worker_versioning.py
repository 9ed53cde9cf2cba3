"""Worker Deployment Versioning behind ``CEDAR_WORKER_BUILD_ID``: each release's workers join the deployment as
their own version, and the server hands new work only to the version made current at deploy."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from temporalio.api.enums.v1 import VersioningBehavior
from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest
from temporalio.client import Client
from temporalio.service import RPCError

from core.contracts.scheduled import DUNNING_SWEEP_WORKFLOW, SweepReport, SweepRequest
from core.db import SessionFactory
from core.settings import Settings
from tests.waiting import eventually
from workers.main import build_deps, build_worker, deployment_config


async def _make_current(client: Client, settings: Settings) -> None:
    """The deploy's step: ``temporal worker deployment set-current-version`` once the new workers poll."""

    async def made_current() -> bool:
        try:
            await client.workflow_service.set_worker_deployment_current_version(
                SetWorkerDeploymentCurrentVersionRequest(
                    namespace=client.namespace, deployment_name=settings.task_queue, build_id=settings.worker_build_id
                )
            )
        except RPCError:  # the version is known only once its workers have polled
            return False
        return True

    await eventually(made_current, timeout=30, what=f"version {settings.worker_build_id} made current")


async def _sweep_served_by(client: Client, settings: Settings) -> str:
    handle = await client.start_workflow(
        DUNNING_SWEEP_WORKFLOW,
        SweepRequest(),
        id=f"sweep-{uuid.uuid4()}",
        task_queue=settings.task_queue,
        result_type=SweepReport,
    )
    await handle.result()
    info = (await handle.describe()).raw_description.workflow_execution_info.versioning_info
    assert info.behavior == VersioningBehavior.VERSIONING_BEHAVIOR_AUTO_UPGRADE
    return info.deployment_version.build_id


async def test_new_work_goes_to_the_current_release_while_two_releases_poll(
    make_settings: Callable[..., Settings], temporal_client: Client, sessions: SessionFactory
) -> None:
    first = make_settings(worker_build_id="release-1")
    second = make_settings(worker_build_id="release-2")
    async with build_worker(temporal_client, build_deps(first, sessions, temporal_client)):
        await _make_current(temporal_client, first)
        assert await _sweep_served_by(temporal_client, first) == "release-1"
        async with build_worker(temporal_client, build_deps(second, sessions, temporal_client)):
            await _make_current(temporal_client, second)
            # Both releases poll the queue; only the current one is handed the new run.
            assert await _sweep_served_by(temporal_client, second) == "release-2"


def test_workers_are_unversioned_unless_a_build_id_is_set(make_settings: Callable[..., Settings]) -> None:
    assert deployment_config(make_settings()) is None
    config = deployment_config(make_settings(worker_build_id="b7", worker_deployment_name="cedar"))
    assert config is not None
    assert (config.version.deployment_name, config.version.build_id) == ("cedar", "b7")
    assert config.use_worker_versioning
