"""Prometheus metrics: Cedar's own (requests, webhook intake, states read from the database, families' billing
counted from Temporal's visibility) and the Temporal SDK's runtime metrics, in one registry per process
(docs/operations.md, "Observability").

The SDK records into a buffer that :class:`SdkMetrics` drains and exposes under the SDK's own names
(``temporal_workflow_task_execution_failed``, ``temporal_activity_schedule_to_start_latency``...), so the API's
``/metrics`` and a worker's port each serve both from one registry. Durations are in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, start_http_server
from prometheus_client.core import Metric
from prometheus_client.registry import Collector
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.runtime import (
    BUFFERED_METRIC_KIND_COUNTER,
    BUFFERED_METRIC_KIND_GAUGE,
    MetricBuffer,
    MetricBufferDurationFormat,
)

from core.contracts.billing import FAMILY_BILLING_WORKFLOW
from core.temporal import BILLING_ATTENTION, BILLING_STATE

logger = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Where the SDK's histograms fall: latencies from milliseconds (a local activity) to minutes (a backlog).
SDK_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
# The SDK keeps at most this many updates between drains; a drain runs at every scrape and every few seconds.
SDK_BUFFER_SIZE = 100_000
SDK_DRAIN_EVERY = timedelta(seconds=5)

# States counted from the database at each scrape: cheap COUNT ... GROUP BY on indexed columns.
_ENROLLMENTS_BY_STATE = text("SELECT state, count(*) FROM enrollments GROUP BY state")
_DUNNING_BY_STATE = text("SELECT dunning_state, count(*) FROM billing_accounts GROUP BY dunning_state")
# An invoice that failed to collect and is still owed (paid or voided ones no longer count).
_INVOICES_FAILED = text("SELECT count(*) FROM invoices WHERE first_failed_at IS NOT NULL AND status = 'open'")
_STRIPE_EVENTS_BY_STATUS = text("SELECT status, count(*) FROM stripe_events GROUP BY status")

# Families' billing read from Temporal's visibility at each scrape (billing's search attributes, core/temporal.py).
_RUNNING_BILLING = f'WorkflowType="{FAMILY_BILLING_WORKFLOW}" AND ExecutionStatus="Running"'
BILLING_ATTENTION_QUERY = f'{_RUNNING_BILLING} AND {BILLING_ATTENTION.name}="failed-commands"'
BILLING_OPEN_INVOICE_QUERY = f'{_RUNNING_BILLING} AND {BILLING_STATE.name}="open-invoice"'
# A scrape waits this long for Temporal's counts; past it they read as unknown (NaN), never as zero.
TEMPORAL_COUNT_TIMEOUT = timedelta(seconds=2)


@dataclass
class _HistogramState:
    buckets: list[int]
    total: float = 0.0
    count: int = 0


@dataclass
class _SdkMetric:
    name: str
    kind: int
    description: str
    values: dict[tuple[tuple[str, str], ...], float] = field(default_factory=dict)
    histograms: dict[tuple[tuple[str, str], ...], _HistogramState] = field(default_factory=dict)


class SdkMetrics(Collector):
    """The Temporal SDK's runtime metrics, read from a :class:`MetricBuffer` and exposed as Prometheus series.

    Counters add up their deltas, gauges keep their last value, histograms fall into :data:`SDK_BUCKETS`.
    """

    def __init__(self, buffer_size: int = SDK_BUFFER_SIZE) -> None:
        self.buffer = MetricBuffer(buffer_size, MetricBufferDurationFormat.SECONDS)
        self._metrics: dict[str, _SdkMetric] = {}
        self._lock = threading.Lock()  # a worker's scrapes come on the HTTP server's thread

    def drain(self) -> None:
        with self._lock:
            try:
                updates = self.buffer.retrieve_updates()
            except RuntimeError:  # no runtime uses the buffer yet
                return
            for update in updates:
                self._record(update.metric.name, update.metric.kind, update.metric.description, update)

    def _record(self, name: str, kind: int, description: str | None, update: Any) -> None:
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = _SdkMetric(name, kind, description or name)
        key = tuple(sorted((str(k), str(v)) for k, v in update.attributes.items()))
        value = float(update.value)
        if kind == BUFFERED_METRIC_KIND_COUNTER:
            metric.values[key] = metric.values.get(key, 0.0) + value
        elif kind == BUFFERED_METRIC_KIND_GAUGE:
            metric.values[key] = value
        else:
            state = metric.histograms.get(key)
            if state is None:
                state = metric.histograms[key] = _HistogramState([0] * len(SDK_BUCKETS))
            for index, bound in enumerate(SDK_BUCKETS):
                if value <= bound:
                    state.buckets[index] += 1
            state.total += value
            state.count += 1

    def collect(self) -> Iterator[Metric]:
        self.drain()
        with self._lock:
            for metric in self._metrics.values():
                yield _family(metric)

    async def keep_draining(self, stop: asyncio.Event) -> None:
        """Drains the buffer every few seconds until ``stop`` is set, so nothing is dropped between scrapes."""
        while not stop.is_set():
            self.drain()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=SDK_DRAIN_EVERY.total_seconds())


def _family(metric: _SdkMetric) -> Metric:
    if metric.kind == BUFFERED_METRIC_KIND_COUNTER:
        family = Metric(metric.name, metric.description, "counter")
        for key, value in metric.values.items():
            family.add_sample(metric.name, dict(key), value)
        return family
    if metric.kind == BUFFERED_METRIC_KIND_GAUGE:
        family = Metric(metric.name, metric.description, "gauge")
        for key, value in metric.values.items():
            family.add_sample(metric.name, dict(key), value)
        return family
    family = Metric(metric.name, metric.description, "histogram")
    for key, state in metric.histograms.items():
        labels = dict(key)
        for bound, count in zip(SDK_BUCKETS, state.buckets, strict=True):
            family.add_sample(f"{metric.name}_bucket", {**labels, "le": _bound(bound)}, count)
        family.add_sample(f"{metric.name}_bucket", {**labels, "le": "+Inf"}, state.count)
        family.add_sample(f"{metric.name}_sum", labels, state.total)
        family.add_sample(f"{metric.name}_count", labels, state.count)
    return family


def _bound(value: float) -> str:
    return repr(float(value))


class CedarMetrics:
    """Cedar's own series, in the process's registry (with the SDK's when ``sdk`` is given)."""

    def __init__(self, sdk: SdkMetrics | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.sdk = sdk
        if sdk is not None:
            self.registry.register(sdk)
        self.http_requests = Counter(
            "cedar_http_requests",
            "HTTP requests answered, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.http_duration = Histogram(
            "cedar_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template and method",
            ["route", "method"],
            registry=self.registry,
        )
        self.webhooks = Counter(
            "cedar_webhook_events",
            "Stripe webhook deliveries: received (new), duplicate (stored before) or rejected (bad signature or body)",
            ["outcome"],
            registry=self.registry,
        )
        self.enrollments = Gauge(
            "cedar_enrollments", "Enrollments by state (read at scrape)", ["state"], registry=self.registry
        )
        self.dunning = Gauge(
            "cedar_dunning_families",
            "Families' billing accounts by dunning state (read at scrape)",
            ["state"],
            registry=self.registry,
        )
        self.invoices_failed = Gauge(
            "cedar_invoices_failed",
            "Open invoices whose collection has failed (read at scrape)",
            registry=self.registry,
        )
        self.stripe_events = Gauge(
            "cedar_stripe_events",
            "Stored Stripe events by status (read at scrape)",
            ["status"],
            registry=self.registry,
        )
        self.billing_attention = Gauge(
            "cedar_billing_attention_families",
            "Families whose running billing has work that failed at every retry (read from Temporal at scrape)",
            registry=self.registry,
        )
        self.billing_open_invoice = Gauge(
            "cedar_billing_open_invoice_families",
            "Families whose running billing has an unpaid invoice (read from Temporal at scrape)",
            registry=self.registry,
        )
        # Unknown until Temporal has answered a scrape.
        self.billing_attention.set(math.nan)
        self.billing_open_invoice.set(math.nan)

    async def refresh_from_db(self, session: AsyncSession) -> None:
        """Reads the states the gauges show; a state no row has any more drops from the output."""
        _set_counts(self.enrollments, (await session.execute(_ENROLLMENTS_BY_STATE)).all())
        _set_counts(self.dunning, (await session.execute(_DUNNING_BY_STATE)).all())
        _set_counts(self.stripe_events, (await session.execute(_STRIPE_EVENTS_BY_STATUS)).all())
        self.invoices_failed.set(int((await session.execute(_INVOICES_FAILED)).scalar_one()))

    async def refresh_from_temporal(
        self, client: Callable[[], Awaitable[Client]], within: timedelta = TEMPORAL_COUNT_TIMEOUT
    ) -> None:
        """Counts families' billing workflows by search attribute; when Temporal does not answer ``within`` (or
        refuses), the gauges read NaN: unknown, never a reassuring zero."""

        async def counts() -> tuple[int, int]:
            temporal = await client()
            attention, open_invoice = await asyncio.gather(
                temporal.count_workflows(BILLING_ATTENTION_QUERY), temporal.count_workflows(BILLING_OPEN_INVOICE_QUERY)
            )
            return attention.count, open_invoice.count

        try:
            attention, open_invoice = await asyncio.wait_for(counts(), within.total_seconds())
        except Exception as error:
            logger.warning("metrics: Temporal did not count billing workflows: %r", error)
            self.billing_attention.set(math.nan)
            self.billing_open_invoice.set(math.nan)
            return
        self.billing_attention.set(attention)
        self.billing_open_invoice.set(open_invoice)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


def _set_counts(gauge: Gauge, rows: Sequence[Any]) -> None:
    gauge.clear()
    for label, count in rows:
        gauge.labels(str(label)).set(int(count))


def worker_registry(sdk: SdkMetrics) -> CollectorRegistry:
    """What a worker process's port serves: the SDK's series (Cedar's database gauges are the API's)."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(sdk)
    return registry


@contextlib.contextmanager
def serving_metrics(registry: CollectorRegistry, host: str, port: int) -> Iterator[int]:
    """Serves ``registry`` on http://host:port/metrics (port 0: a free one) for the block; yields the port."""
    server, thread = start_http_server(port, host, registry)
    try:
        yield int(server.server_port)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.asynccontextmanager
async def draining(sdk: SdkMetrics) -> AsyncIterator[None]:
    """Drains the SDK's buffer in the background for the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(sdk.keep_draining(stop))
    try:
        yield
    finally:
        stop.set()
        await task
