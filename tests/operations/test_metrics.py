"""Prometheus metrics: ``GET /metrics`` shows Temporal's SDK series and Cedar's own after an enrollment, only to the
scrape token or an admin; a family whose billing is flagged (and owes) shows in the billing gauges, which read NaN
(not 0) when Temporal does not answer; a worker process's port serves the SDK's series."""

from __future__ import annotations

import asyncio
import math
import os
import signal
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    BUFFERED_METRIC_KIND_HISTOGRAM,
)
from temporalio.worker import Worker

from api.main import create_app
from core.contracts.billing import (
    FAMILY_BILLING_WORKFLOW,
    Command,
    FamilyBillingInput,
    FamilyBillingState,
    InvoiceState,
)
from core.contracts.scheduled import DUNNING_SWEEP_WORKFLOW, SweepReport, SweepRequest
from core.db import SessionFactory
from core.metrics import CedarMetrics, SdkMetrics, worker_registry
from core.settings import Settings
from core.temporal import BILLING_ATTENTION, billing_workflow_id
from devstack.ports import free_port
from models import Role
from tests.billing.conftest import make_family
from tests.billing.dunning_stand_in import DunningStandIn
from tests.enrollment.helpers import enroll, wait_for_state
from tests.waiting import eventually
from tests.worker_exit import running
from workers.main import build_deps, run
from workers.registry import activity_functions
from workflows.billing import FamilyBillingWorkflow

SCRAPE_TOKEN = "scrape-token-for-tests-0123456789"


def samples(exposition: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Every sample of a Prometheus text exposition, by sample name."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((dict(sample.labels), float(sample.value)))
    return found


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    # The API's own worker runs the enrollment, on the API's client: its SDK metrics are the API's.
    return make_settings(sdk_metrics=True, api_worker=True, enrollment_task_queue="", metrics_token=SCRAPE_TOKEN)


@pytest.fixture
async def api_with_worker(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as client:
            yield client


async def test_metrics_show_temporal_and_cedar_series_after_an_enrollment(
    api_with_worker: httpx.AsyncClient, demo_data: None
) -> None:
    api = api_with_worker
    enrollment_id = await enroll(api)
    await wait_for_state(api, enrollment_id, "demo_scheduled")
    rejected = await api.post("/api/v1/webhooks/stripe", content=b"{}", headers={"Stripe-Signature": "t=1,v1=bad"})
    assert rejected.status_code == 401

    response = await api.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    found = samples(response.text)

    requests = {
        (labels["route"], labels["method"], labels["status"]) for labels, _ in found["cedar_http_requests_total"]
    }
    assert ("/api/v1/enrollments", "POST", "202") in requests
    # Route templates, never raw paths with their ids.
    assert ("/api/v1/enrollments/{enrollment_id}", "GET", "200") in requests
    assert not any(enrollment_id in route for route, _, _ in requests)
    assert any(
        labels["route"] == "/api/v1/enrollments" for labels, _ in found["cedar_http_request_duration_seconds_count"]
    )
    assert ({"outcome": "rejected"}, 1.0) in found["cedar_webhook_events_total"]
    states = {labels["state"]: value for labels, value in found["cedar_enrollments"]}
    assert states["demo_scheduled"] == 1.0
    assert found["cedar_invoices_failed"] == [({}, 0.0)]
    # Temporal's SDK, from the API's own worker that ran the enrollment.
    completed = found["temporal_workflow_task_execution_latency_count"]
    assert any(labels.get("workflow_type") == "EnrollmentWorkflow" for labels, _ in completed), completed
    assert any(name.startswith("temporal_activity_execution_latency") for name in found)


async def test_metrics_answer_the_scrape_token_or_an_admin_only(
    api_with_worker: httpx.AsyncClient, auth_headers: Callable[..., Any]
) -> None:
    api = api_with_worker
    assert (await api.get("/metrics")).status_code == 401
    assert (await api.get("/metrics", headers={"Authorization": "Bearer not-the-token"})).status_code == 401
    assert (await api.get("/metrics", headers=await auth_headers(Role.parent))).status_code == 403
    assert (await api.get("/metrics", headers=await auth_headers(Role.teacher))).status_code == 403
    assert (await api.get("/metrics", headers=await auth_headers(Role.admin))).status_code == 200


async def test_a_flagged_family_that_owes_shows_in_the_billing_gauges(
    make_settings: Callable[..., Settings], sessions: SessionFactory, temporal_client: Client
) -> None:
    settings = make_settings(
        metrics_token=SCRAPE_TOKEN,
        billing_command_retry_after=timedelta(milliseconds=200),
        billing_command_attempts=2,
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as api:

            async def scrape() -> dict[str, list[tuple[dict[str, str], float]]]:
                response = await api.get("/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
                assert response.status_code == 200, response.text
                return samples(response.text)

            def gauge(found: dict[str, list[tuple[dict[str, str], float]]], series: str) -> float:
                [(_, value)] = found[series]
                return value

            def flagged_families(found: dict[str, list[tuple[dict[str, str], float]]]) -> float:
                return gauge(found, "cedar_billing_attention_families")

            def owing_families(found: dict[str, list[tuple[dict[str, str], float]]]) -> float:
                return gauge(found, "cedar_billing_open_invoice_families")

            before = await scrape()
            # Other tests' families, on the same server.
            already, owing = flagged_families(before), owing_families(before)
            assert not math.isnan(already)
            assert not math.isnan(owing)

            family = await make_family(sessions)
            # A command no handler knows fails at every try: the family's billing is flagged. It also owes an invoice.
            poisoned = FamilyBillingState(
                pending=[Command(kind="no_such_command", payload={"x": 1})],
                open_invoices={"in_1": InvoiceState(stripe_invoice_id="in_1", status="open", amount_due_minor=500)},
            )
            handle = await temporal_client.start_workflow(
                FAMILY_BILLING_WORKFLOW,
                FamilyBillingInput(parent_id=family.parent_id, state=poisoned),
                id=billing_workflow_id(family.parent_id),
                task_queue=settings.task_queue,
            )
            worker = Worker(
                temporal_client,
                task_queue=settings.task_queue,
                workflows=[FamilyBillingWorkflow, DunningStandIn],
                activities=activity_functions(build_deps(settings, sessions, temporal_client)),
            )
            try:
                async with running(worker):

                    async def attention() -> str | None:
                        return (await handle.describe()).typed_search_attributes.get(BILLING_ATTENTION)

                    await eventually(attention, until=lambda v: v == "failed-commands", what="the family flagged")
                    after = await eventually(
                        scrape,
                        until=lambda found: (
                            flagged_families(found) >= already + 1 and owing_families(found) >= owing + 1
                        ),
                        what="the flagged family in the gauges",
                    )
            finally:
                await handle.terminate("test over")
    assert flagged_families(after) >= 1
    assert owing_families(after) >= 1


async def test_billing_gauges_read_unknown_not_zero_when_temporal_does_not_answer() -> None:
    metrics = CedarMetrics()

    async def silent() -> Client:
        await asyncio.Event().wait()  # Temporal never answers
        raise AssertionError("unreachable")

    async def refusing() -> Client:
        raise RuntimeError("Failed client connect: connection refused")

    for client in (silent, refusing):
        await metrics.refresh_from_temporal(client, within=timedelta(milliseconds=50))
        found = samples(metrics.exposition().decode())
        for series in ("cedar_billing_attention_families", "cedar_billing_open_invoice_families"):
            [(_, value)] = found[series]
            assert math.isnan(value), (client.__name__, series, value)


async def test_a_worker_process_serves_the_sdk_metrics_on_its_port(
    make_settings: Callable[..., Settings], temporal_client: Client
) -> None:
    settings = make_settings(sdk_metrics=True, worker_metrics_port=free_port())
    process = asyncio.create_task(run(settings))  # workers.main's process body, signals and all
    url = f"http://127.0.0.1:{settings.worker_metrics_port}/metrics"

    async def scraped() -> str | None:
        if process.done():
            process.result()  # the worker died: say why
        try:
            return await asyncio.to_thread(_get, url)
        except OSError:
            return None

    try:
        await eventually(scraped, what="the worker's metrics port")  # listening: its signal handlers are set
        handle = await temporal_client.start_workflow(
            DUNNING_SWEEP_WORKFLOW,
            SweepRequest(),
            id=f"sweep-{uuid.uuid4()}",
            task_queue=settings.task_queue,
            result_type=SweepReport,
        )
        await handle.result()
        body = await eventually(
            scraped, until=lambda text: text is not None and "DunningSweepWorkflow" in text, what="the sweep's series"
        )
    finally:
        os.kill(os.getpid(), signal.SIGTERM)  # a deploy's stop: run() returns
        await asyncio.wait_for(process, timeout=60)
    assert body is not None
    found = samples(body)
    completed = found["temporal_workflow_completed"]
    assert any(labels.get("workflow_type") == "DunningSweepWorkflow" for labels, _ in completed), completed
    assert "temporal_workflow_task_schedule_to_start_latency_count" in found
    assert not any(name.startswith("cedar_") for name in found)  # the database's gauges are the API's


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (a loopback URL of this test)
        return str(response.read().decode())


@dataclass(frozen=True)
class _Metric:
    name: str
    kind: int
    description: str | None = None
    unit: str | None = None


@dataclass(frozen=True)
class _Update:
    metric: _Metric
    value: float
    attributes: dict[str, str]


class _Buffer:
    def __init__(self, *batches: list[_Update]) -> None:
        self.batches = list(batches)

    def retrieve_updates(self) -> list[_Update]:
        return self.batches.pop(0) if self.batches else []


def test_sdk_updates_add_up_as_prometheus_series() -> None:
    failed = _Metric("temporal_workflow_task_execution_failed", BUFFERED_METRIC_KIND_COUNTER)
    slots = _Metric("temporal_worker_task_slots_available", BUFFERED_METRIC_KIND_GAUGE)
    latency = _Metric("temporal_activity_schedule_to_start_latency", BUFFERED_METRIC_KIND_HISTOGRAM)
    billing, enrollment = {"workflow_type": "FamilyBillingWorkflow"}, {"workflow_type": "EnrollmentWorkflow"}
    sdk = SdkMetrics()
    sdk.buffer = _Buffer(  # type: ignore[assignment]
        [_Update(failed, 1, billing), _Update(slots, 10, {}), _Update(latency, 0.02, {"task_queue": "cedar"})],
        [_Update(failed, 2, billing), _Update(failed, 1, enrollment), _Update(slots, 7, {})],
        [_Update(latency, 45, {"task_queue": "cedar"})],
    )
    sdk.drain()
    sdk.drain()
    found = samples(generate_latest(worker_registry(sdk)).decode())
    assert sorted(found["temporal_workflow_task_execution_failed"], key=str) == sorted(
        [(billing, 3.0), (enrollment, 1.0)], key=str
    )
    assert found["temporal_worker_task_slots_available"] == [({}, 7.0)]
    buckets = {labels["le"]: value for labels, value in found["temporal_activity_schedule_to_start_latency_bucket"]}
    assert (buckets["0.01"], buckets["0.025"], buckets["30.0"], buckets["60.0"], buckets["+Inf"]) == (0, 1, 1, 2, 2)
    assert found["temporal_activity_schedule_to_start_latency_sum"] == [({"task_queue": "cedar"}, 45.02)]
