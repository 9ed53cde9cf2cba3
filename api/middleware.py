"""Request hygiene for every route: a request id, a body size limit (413), text PostgreSQL cannot store (422),
and the security headers from settings.

Plain ASGI (not ``BaseHTTPMiddleware``) so streaming responses pass through untouched and every request pays
little for it.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Iterator

from fastapi import FastAPI, Request
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body
from api.pages import is_page_path
from core.metrics import CedarMetrics
from core.settings import Settings
from core.tracing import REQUEST_ID, request_id_baggage

REQUEST_ID_HEADER = "x-request-id"
# One line per request, with its request id (core/logging.py): the access log in the logs' own format.
_access = logging.getLogger("cedar.http")
UNSTORABLE = "text may not contain NUL characters or unpaired surrogates"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Swagger UI and ReDoc are HTML pages with inline scripts: the API's strict CSP would blank them.
_DOCS = ("/docs", "/redoc")
# People's pages (api/pages/) answer with the page CSP instead, unless a page sets its own (the card form adds
# Stripe's origins); and with the cookies the request queued (a renewed session, a CSRF seed).
_PAGE_COOKIES = "page_cookies"
_CSP = b"content-security-policy"
_NO_STORE_PREFIX = "/api/v1/auth"  # tokens must never sit in a shared cache


def request_id(request: Request) -> str | None:
    """The id of this request (the caller's ``X-Request-ID`` when well-formed), for logs and the audit log."""
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else None


class RequestHygieneMiddleware:
    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_request_body_bytes
        self.headers = [(name.lower().encode(), value.encode()) for name, value in settings.security_headers.items()]
        page_csp = settings.page_content_security_policy.encode()
        self.page_headers = [(name, page_csp if name == _CSP else value) for name, value in self.headers]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope["headers"]).get(REQUEST_ID_HEADER.encode(), b"").decode("latin-1")
        rid = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        extra = [(REQUEST_ID_HEADER.encode(), rid.encode())]
        path: str = scope["path"]
        page = is_page_path(path)
        if page:
            extra += self.page_headers
        else:
            extra += [h for h in self.headers if not (h[0] == _CSP and path.startswith(_DOCS))]
        if path.startswith(_NO_STORE_PREFIX):
            extra.append((b"cache-control", b"no-store"))
        state = scope["state"]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                own = message.get("headers", [])
                ours = extra
                if page and any(k.lower() == _CSP for k, _ in own):
                    ours = [h for h in extra if h[0] != _CSP]  # the page's own, stricter-or-wider CSP stands
                names = {name for name, _ in ours}
                kept = [(k, v) for k, v in own if k.lower() not in names]
                cookies = [(b"set-cookie", value.encode("latin-1")) for value in state.get(_PAGE_COOKIES, ())]
                message = {**message, "headers": kept + ours + cookies}
            await send(message)

        body = await self._read_body(scope, receive)
        if body is None:
            await _answer(
                send_with_headers,
                413,
                error_body("payload_too_large", f"the request body is larger than {self.max_body} bytes"),
            )
            return
        if _unstorable(scope, body):
            await _answer(
                send_with_headers,
                422,
                error_body("validation_error", "the request is invalid", {"request": UNSTORABLE}),
            )
            return
        await self.app(scope, _replay(body, receive), send_with_headers)

    async def _read_body(self, scope: Scope, receive: Receive) -> list[Message] | None:
        """The request's body messages, or None past the limit (checked on the declared length first, then
        on what actually arrives, since a chunked body declares none)."""
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            return None
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages
            size += len(message.get("body", b""))
            if size > self.max_body:
                return None
            if not message.get("more_body", False):
                return messages


async def _answer(send: Send, status: int, body: dict[str, object]) -> None:
    content = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": content})


def _unstorable(scope: Scope, messages: list[Message]) -> bool:
    """NUL characters and lone surrogates: valid JSON and URL escapes, but PostgreSQL text cannot hold them, so
    they would fail deep in a query as a 500. Refused here, once, for every route."""
    if b"%00" in scope.get("query_string", b"") or "\x00" in scope["path"]:
        return True
    body = b"".join(message.get("body", b"") for message in messages)
    if b"\\u" not in body:  # only escapes can smuggle them into JSON; raw bytes fail JSON decoding anyway
        return False
    try:
        parsed = json.loads(body)
    except ValueError:
        return False  # malformed JSON: FastAPI answers it with its own 422
    return any("\x00" in text or not _encodable(text) for text in _strings(parsed))


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _replay(messages: list[Message], receive_from_server: Receive) -> Receive:
    pending = list(messages)

    async def receive() -> Message:
        # The buffered body first; after it, what the server says next (a disconnect, when it comes).
        return pending.pop(0) if pending else await receive_from_server()

    return receive


class ObservabilityMiddleware:
    """Each request's span (its request id as an attribute and as baggage, so the workflows and activities it
    starts carry it too), and its count and latency by route template (never the raw path: ids would make a
    series per row)."""

    def __init__(self, app: ASGIApp, metrics: CedarMetrics, tracer: Tracer, unrouted: frozenset[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracer
        self.unrouted = unrouted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        rid = str(scope.get("state", {}).get("request_id") or uuid.uuid4().hex)
        status = 500
        started = time.perf_counter()

        async def send_recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with (
            request_id_baggage(rid),
            self.tracer.start_as_current_span(f"HTTP {method}", kind=SpanKind.SERVER) as span,
        ):
            span.set_attribute(REQUEST_ID, rid)
            span.set_attribute("http.request.method", method)
            try:
                await self.app(scope, receive, send_recording)
            finally:
                route = _route_template(scope, self.unrouted)
                span.update_name(f"HTTP {method} {route}")
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                elapsed = time.perf_counter() - started
                self.metrics.http_requests.labels(route, method, str(status)).inc()
                self.metrics.http_duration.labels(route, method).observe(elapsed)
                _access.info(
                    "%s %s %s",
                    method,
                    route,
                    status,
                    extra={
                        "http_method": method,
                        "http_route": route,
                        "http_status": status,
                        "duration_ms": round(elapsed * 1000, 1),
                    },
                )


def _route_template(scope: Scope, unrouted: frozenset[str]) -> str:
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        return path
    if scope["path"] in unrouted:
        return str(scope["path"])
    return "unmatched"


def install_middleware(
    app: FastAPI, settings: Settings, metrics: CedarMetrics, tracer: Tracer, unrouted: frozenset[str] = frozenset()
) -> None:
    """The observability layer sits inside the hygiene layer, so it sees the request id that layer settled.
    ``unrouted``: paths answered before FastAPI's routing (no route template on the scope), counted by path."""
    app.add_middleware(ObservabilityMiddleware, metrics=metrics, tracer=tracer, unrouted=unrouted)
    app.add_middleware(RequestHygieneMiddleware, settings=settings)
