"""The FastAPI app: ``uvicorn api.main:serve --factory`` runs it; tests build it with ``create_app``."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.routing import APIRoute
from opentelemetry.sdk.trace import TracerProvider

from api.deps import AppContext
from api.errors import install_error_handlers
from api.inbox_writer import WebhookInboxWriter
from api.middleware import install_middleware
from api.pages import page_routers
from api.pages.web import install_page_errors
from api.routes import ROUTERS
from api.routes.codec import CodecCors
from api.routes.webhooks import STRIPE_WEBHOOK_PATH
from api.stripe_intake import StripeWebhookIntake
from core.db import create_engine, create_session_factory
from core.logging import configure_logging
from core.mail import Mailer
from core.metrics import CedarMetrics, SdkMetrics, draining
from core.payload_keys import PayloadKeyring
from core.settings import Settings
from core.temporal import LazyTemporalClient, create_runtime
from core.tracing import create_tracer_provider, tracer_of
from workers.in_api import serve_beside_api


def _operation_id(route: APIRoute) -> str:
    # Stable ids make generated API clients readable: "enrollments-create_enrollment".
    tag = route.tags[0] if route.tags else "default"
    return f"{tag}-{route.name}"


def create_app(settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None) -> FastAPI:
    """The app; ``tracer_provider`` (tests: one with an in-memory exporter) replaces the one settings describe."""
    settings = settings or Settings()
    configure_logging(settings)
    sdk_metrics = SdkMetrics() if settings.effective_sdk_metrics else None
    metrics = CedarMetrics(sdk_metrics)
    provider = tracer_provider or create_tracer_provider(settings, "cedar-api")
    tracer = tracer_of(provider)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The in-process worker shares this engine: its enrollment activities retry after a lock timeout.
        engine = create_engine(settings, purpose="api")
        # The codec's key reads have a pool of their own: a request holding its connection may start or signal a
        # family's workflow, whose payloads need the family's key, and must not wait on a second request slot.
        key_settings = settings.model_copy(update={"db_pool_size": settings.payload_key_db_pool_size})
        key_engine = create_engine(key_settings, purpose="api")
        app.state.context = context = AppContext(
            settings=settings,
            engine=engine,
            sessions=create_session_factory(engine),
            read_sessions=create_session_factory(engine.execution_options(isolation_level="AUTOCOMMIT")),
            temporal=LazyTemporalClient(
                settings,
                PayloadKeyring(settings, create_session_factory(key_engine)),
                runtime=create_runtime(sdk_metrics),
                tracer=tracer,
            ),
            mailer=Mailer(settings),
            webhook_inbox=WebhookInboxWriter(engine),
        )
        stop_worker = asyncio.Event()
        worker = (
            asyncio.create_task(serve_beside_api(settings, context.sessions, context.temporal, stop_worker))
            if settings.api_worker
            else None
        )
        try:
            async with draining(sdk_metrics) if sdk_metrics is not None else contextlib.nullcontext():
                yield
        finally:
            stop_worker.set()
            if worker is not None:
                await worker
            if tracer_provider is None:
                provider.shutdown()  # sends the spans still queued
            await engine.dispose()
            await key_engine.dispose()

    app = FastAPI(
        title=f"Cedar — {settings.school_name}",
        version="0.1.0",
        description="Music-school operations on durable Temporal workflows.",
        lifespan=lifespan,
        generate_unique_id_function=_operation_id,
    )
    app.state.metrics = metrics
    app.add_middleware(StripeWebhookIntake)  # inside the hygiene layer: size limit, request id, security headers
    # Inside CORS, so a 413 still carries the CORS headers; the webhook is answered before routing.
    install_middleware(app, settings, metrics, tracer, unrouted=frozenset({STRIPE_WEBHOOK_PATH}))
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        allow_credentials=True,
    )
    app.add_middleware(CodecCors, origin=settings.effective_temporal_ui_origin)  # outside the app's CORS
    install_error_handlers(app)
    install_page_errors(app)  # on page paths, errors answer as pages
    for router in [*ROUTERS, *page_routers()]:  # no prefix at inclusion: api/routing.py reads it from the routes
        app.include_router(router)
    return app


def serve() -> FastAPI:
    """The factory uvicorn runs: the app, with the garbage collector tuned for a long-lived server process.

    What start-up built (modules, routes, models) lives as long as the process; frozen, it is no longer re-scanned
    by every full collection. Collections of young objects are made rarer, since each request allocates thousands.
    Tests build many apps in one process, so ``create_app`` leaves the collector alone.
    """
    app = create_app()
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    return app
