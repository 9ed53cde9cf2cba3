"""The worker inside the API process (``api_worker``): it takes enrollments (eager start) and nothing else."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx

from api.main import create_app
from core.settings import Settings
from devstack.stack import worker_polling
from tests.enrollment.helpers import enroll, wait_for_state
from workers.main import worker_task_queues


async def test_an_api_with_its_own_worker_takes_an_enrollment_to_its_demo_alone_and_leaves_billing_alone(
    make_settings: Callable[..., Settings], demo_data: None
) -> None:
    # No run_worker here: only the API's own worker polls, and only the enrollments' queue (production's split).
    settings = make_settings(api_worker=True, enrollment_task_queue="")
    assert settings.enrollment_queue == f"{settings.task_queue}-enrollments"
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as api:
            enrollment_id = await enroll(api)
            status = await wait_for_state(api, enrollment_id, "demo_scheduled")
        address, namespace = settings.effective_temporal_address, settings.temporal_namespace
        assert await asyncio.to_thread(worker_polling, address, namespace, settings.enrollment_queue)
        # Billing, dunning and schedules live on the main queue: no worker of an API process ever polls it.
        assert not await asyncio.to_thread(worker_polling, address, namespace, settings.task_queue)
    assert status["teacher_display_name"] == "Maya L."
    assert [step["state"] for step in status["steps"]][-1] == "demo_scheduled"


def test_a_worker_process_polls_both_queues_once_each(make_settings: Callable[..., Settings]) -> None:
    apart = make_settings(enrollment_task_queue="")
    assert worker_task_queues(apart) == [apart.task_queue, f"{apart.task_queue}-enrollments"]
    together = make_settings()
    assert worker_task_queues(together) == [together.task_queue]
