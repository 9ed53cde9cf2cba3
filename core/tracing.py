"""OpenTelemetry tracing: one tracer provider per process, exporting over OTLP/HTTP when
``otlp_traces_endpoint`` is set (otherwise spans are made and dropped).

The API's request id travels as W3C baggage (``cedar.request_id``) with the span context that Temporal's
``TracingInterceptor`` puts in workflow and activity headers; :class:`RequestIdSpanProcessor` writes it on every
span, and the JSON log formatter (core/logging.py) on every log line made inside a request or an activity.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import baggage, context
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.trace import Tracer
from temporalio.contrib.opentelemetry import TracingInterceptor

from core.settings import Settings

REQUEST_ID = "cedar.request_id"
TRACER_NAME = "cedar"


class RequestIdSpanProcessor(SpanProcessor):
    """Copies the request id from the span's parent context (baggage) onto the span as an attribute."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        value = baggage.get_baggage(REQUEST_ID, parent_context)
        if value is not None:
            span.set_attribute(REQUEST_ID, str(value))

    def on_end(self, span: ReadableSpan) -> None:
        return None

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def create_tracer_provider(settings: Settings, service: str, exporter: SpanExporter | None = None) -> TracerProvider:
    """The process's provider; ``exporter`` (tests: an in-memory one) replaces the OTLP exporter of settings."""
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(RequestIdSpanProcessor())
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.otlp_traces_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint)))
    return provider


def tracer_of(provider: TracerProvider) -> Tracer:
    return provider.get_tracer(TRACER_NAME)


def tracing_interceptor(tracer: Tracer) -> TracingInterceptor:
    """Temporal's interceptor: client calls, workflows and activities join the caller's trace."""
    return TracingInterceptor(tracer)


def current_request_id() -> str | None:
    """The request id of the request (or of the request that started this activity's workflow), if any."""
    value = baggage.get_baggage(REQUEST_ID)
    return None if value is None else str(value)


@contextmanager
def request_id_baggage(request_id: str) -> Iterator[None]:
    """Within this block, calls to Temporal (and the spans they make) carry ``request_id``."""
    token = context.attach(baggage.set_baggage(REQUEST_ID, request_id))
    try:
        yield
    finally:
        context.detach(token)
