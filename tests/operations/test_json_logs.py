"""JSON log lines carry the ids that tie them to a request, a workflow run and an activity."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    import httpx
    import pytest
    from temporalio.worker import Worker

    from core.logging import JsonFormatter, TextFormatter, configure_logging, formatter_for
    from core.settings import Settings
    from core.temporal import connect_temporal
    from core.tracing import create_tracer_provider, request_id_baggage, tracer_of


@activity.defn(name="obs_test_log_probe")
async def log_probe(note: str) -> str:
    activity.logger.warning("probe %s", note)
    logging.getLogger("cedar.test.probe").warning("plain logger in an activity")
    return note


@workflow.defn(name="ObsTestLogWorkflow")
class LogWorkflow:
    @workflow.run
    async def run(self, note: str) -> str:
        workflow.logger.warning("workflow says %s", note)
        return await workflow.execute_activity(log_probe, note, start_to_close_timeout=timedelta(seconds=10))


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def lines() -> Iterator[Lines]:
    handler = Lines()
    root, access = logging.getLogger(), logging.getLogger("cedar.http")
    before = access.level
    access.setLevel(logging.INFO)
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
    access.setLevel(before)


async def test_an_activitys_lines_carry_its_workflow_activity_and_request_ids(settings: Settings, lines: Lines) -> None:
    tracer = tracer_of(create_tracer_provider(settings, "test"))
    client = await connect_temporal(settings, tracer=tracer)
    async with Worker(client, task_queue=settings.task_queue, workflows=[LogWorkflow], activities=[log_probe]):
        with request_id_baggage("log-req-7"):
            handle = await client.start_workflow(
                LogWorkflow.run, "hello", id=f"log-{uuid.uuid4()}", task_queue=settings.task_queue
            )
        assert await handle.result() == "hello"
    run_id = handle.result_run_id
    probe = next(line for line in lines.lines if str(line["message"]).startswith("probe hello"))
    assert probe["level"] == "WARNING"
    assert probe["workflow_id"] == handle.id
    assert probe["run_id"] == run_id
    assert probe["workflow_type"] == "ObsTestLogWorkflow"
    assert probe["activity_type"] == "obs_test_log_probe"
    assert probe["activity_id"]
    assert probe["request_id"] == "log-req-7"
    plain = next(line for line in lines.lines if line["logger"] == "cedar.test.probe")
    assert (plain["workflow_id"], plain["activity_id"], plain["request_id"]) == (
        handle.id,
        probe["activity_id"],
        "log-req-7",
    )
    flow = next(line for line in lines.lines if str(line["message"]).startswith("workflow says hello"))
    assert (flow["workflow_id"], flow["run_id"], flow["workflow_type"]) == (handle.id, run_id, "ObsTestLogWorkflow")
    assert flow["request_id"] == "log-req-7"


async def test_the_apis_access_line_carries_the_request_id(api: httpx.AsyncClient, lines: Lines) -> None:
    response = await api.get("/api/v1/instruments", headers={"X-Request-ID": "req-from-the-edge"})
    assert response.status_code == 200
    access = next(line for line in lines.lines if line["logger"] == "cedar.http")
    assert access["request_id"] == "req-from-the-edge"
    assert (access["http_method"], access["http_route"], access["http_status"]) == ("GET", "/api/v1/instruments", 200)
    assert access["message"] == "GET /api/v1/instruments 200"


def test_json_in_production_and_text_elsewhere_unless_set(make_settings: Callable[..., Settings]) -> None:
    assert isinstance(formatter_for(make_settings()), TextFormatter)
    assert isinstance(formatter_for(make_settings(log_format="json")), JsonFormatter)
    assert make_settings(environment="development").effective_log_format == "text"
    record = logging.LogRecord("cedar.x", logging.INFO, __file__, 1, "hi %s", ("there",), None)
    record.temporal_workflow = {"workflow_id": "w-1", "run_id": "r-1", "workflow_type": "T"}
    assert TextFormatter().format(record).endswith("INFO cedar.x hi there [workflow_id=w-1 run_id=r-1 workflow_type=T]")


def test_json_logging_takes_over_uvicorns_own_handlers(make_settings: Callable[..., Settings]) -> None:
    access = logging.getLogger("uvicorn.access")
    own = logging.StreamHandler()
    access.addHandler(own)
    try:
        configure_logging(make_settings(log_format="json"))
        assert isinstance(own.formatter, JsonFormatter)
        assert workflow.logger.workflow_info_on_message is False
    finally:
        access.removeHandler(own)
        workflow.logger.workflow_info_on_message = True
        activity.logger.activity_info_on_message = True
