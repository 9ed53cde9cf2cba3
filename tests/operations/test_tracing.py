"""A trace joins the POST that submits an enrollment to its workflow's activities, carrying the request id."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from api.main import create_app
from core.settings import Settings
from core.tracing import REQUEST_ID, create_tracer_provider
from tests.enrollment.helpers import application, wait_for_state


async def test_a_trace_joins_the_post_to_its_workflows_activities_with_the_request_id(
    make_settings: Callable[..., Settings], demo_data: None
) -> None:
    settings = make_settings(api_worker=True, enrollment_task_queue="")
    exporter = InMemorySpanExporter()
    app = create_app(settings, tracer_provider=create_tracer_provider(settings, "cedar-api", exporter))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as api:
            response = await api.post(
                "/api/v1/enrollments", json=application(), headers={"X-Request-ID": "trace-me-42"}
            )
            assert response.status_code == 202, response.text
            await wait_for_state(api, str(response.json()["enrollment_id"]), "demo_scheduled")

    spans = exporter.get_finished_spans()
    post = next(s for s in spans if s.name == "HTTP POST /api/v1/enrollments")
    assert post.attributes is not None
    assert post.attributes[REQUEST_ID] == "trace-me-42"
    assert post.attributes["http.response.status_code"] == 202
    start = next(s for s in spans if s.name == "StartWorkflow:EnrollmentWorkflow")
    assert start.parent is not None
    assert start.parent.span_id == post.context.span_id
    trace = [s for s in spans if s.context.trace_id == post.context.trace_id]

    def activities() -> list[str]:
        return [s.name for s in trace if s.name.startswith("RunActivity:")]

    assert activities(), [s.name for s in trace]
    assert any(s.name == "RunWorkflow:EnrollmentWorkflow" for s in trace)
    for span in trace:
        assert (span.attributes or {}).get(REQUEST_ID) == "trace-me-42", span.name
