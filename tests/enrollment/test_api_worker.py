"""The worker inside the API process (``api_worker``): enrollments started by the API run with no other worker."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from api.main import create_app
from core.settings import Settings
from tests.enrollment.helpers import enroll, wait_for_state


async def test_an_api_with_its_own_worker_takes_an_enrollment_to_its_demo_alone(
    make_settings: Callable[..., Settings], demo_data: None
) -> None:
    # No run_worker here: only the API's own worker polls this test's task queue.
    app = create_app(make_settings(api_worker=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as api:
            enrollment_id = await enroll(api)
            status = await wait_for_state(api, enrollment_id, "demo_scheduled")
    assert status["teacher_display_name"] == "Maya L."
    assert [step["state"] for step in status["steps"]][-1] == "demo_scheduled"
