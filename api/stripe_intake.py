"""Stripe's webhook, answered before FastAPI's routing: the accept path of a busy billing day.

Every Stripe event is one POST, and a burst of them (a renewal day, a replay from the dashboard) is the API's
heaviest load. Routing through a hundred routes, dependency injection and response validation cost more than
the work itself (an HMAC, a JSON parse, one SQL statement). This pure-ASGI layer runs the very same
``accept_stripe_event`` as the declared route and answers in the same shapes; every other request passes through
untouched.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import AppContext
from api.errors import CedarError, error_body
from api.routes.webhooks import STRIPE_WEBHOOK_PATH, accept_stripe_event
from core.metrics import CedarMetrics

_JSON = (b"content-type", b"application/json")


class StripeWebhookIntake:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != STRIPE_WEBHOOK_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        context: AppContext = scope["app"].state.context
        signature = next((v.decode("latin-1") for k, v in scope["headers"] if k == b"stripe-signature"), None)
        payload = await _body(receive)
        if payload is None:  # the client left before its body arrived: nothing stored, no one to answer
            return
        metrics: CedarMetrics = scope["app"].state.metrics
        try:
            ack = await accept_stripe_event(context, payload, signature)
            status, content = 200, ack.model_dump_json().encode()
            metrics.webhooks.labels("duplicate" if ack.duplicate else "received").inc()
        except CedarError as exc:
            status, content = exc.status_code, json.dumps(error_body(exc.error, exc.detail, exc.fields)).encode()
            metrics.webhooks.labels("rejected").inc()
        headers = [_JSON, (b"content-length", str(len(content)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})


async def _body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
