"""``POST /api/v1/webhooks/stripe``: verified Stripe events into the inbox, then into the family's workflow.

The signature is checked on the raw body against every configured secret (so secrets can be rotated) within
``stripe_webhook_tolerance``. A verified event is stored once and acknowledged at once; a worker process hands it
over to the family's billing workflow (``workers/stripe_forwarder.py``), and the catch-up does if that was lost.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import stripe
from annotated_types import MaxLen
from fastapi import Header, Request
from pydantic import BaseModel

from api.access import ROUTE_ACCESS
from api.deps import AppContext, ContextDep
from api.errors import CedarError
from api.routing import IndexedRouter
from models import StripeEvent

router = IndexedRouter(prefix="/api/v1/webhooks", tags=["webhooks"])
STRIPE_WEBHOOK_PATH = "/api/v1/webhooks/stripe"
# The inbox column's length (the model's); Stripe's own ids are some 30 characters.
MAX_EVENT_ID = next(
    rule.max_length for rule in StripeEvent.model_fields["stripe_event_id"].metadata if isinstance(rule, MaxLen)
)
ROUTE_ACCESS[("POST", STRIPE_WEBHOOK_PATH)] = frozenset({"public"})  # Stripe signs it; no bearer token


class WebhookAck(BaseModel):
    received: bool
    duplicate: bool
    status: str


def verify_signature(payload: bytes, header: str, secrets: list[str], tolerance_seconds: int) -> None:
    """Accepts the payload when any secret verifies the ``t=…,v1=…`` header within the tolerance."""
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload.decode("utf-8"), header, secret, tolerance_seconds)
            return
        except (stripe.SignatureVerificationError, UnicodeDecodeError):
            continue
    raise CedarError(401, "bad_signature", "the Stripe-Signature header does not verify (wrong secret or too old)")


def parse_event(payload: bytes) -> dict[str, Any]:
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise CedarError(400, "bad_payload", "the body is not JSON") from exc
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
        raise CedarError(400, "bad_payload", "the body is not a Stripe event (id and type are required)")
    problems = {}
    if len(event["id"]) > MAX_EVENT_ID:
        problems["id"] = f"at most {MAX_EVENT_ID} characters"
    data = event.get("data")
    if data is not None and not (isinstance(data, dict) and isinstance(data.get("object", {}), dict)):
        problems["data.object"] = "must be an object"
    if problems:
        raise CedarError(400, "bad_payload", "the body is not a Stripe event", problems)
    return event


async def accept_stripe_event(context: AppContext, payload: bytes, signature: str | None) -> WebhookAck:
    """Verify, store once (announcing the event to the worker-side forwarder), acknowledge."""
    if not signature:
        raise CedarError(400, "missing_signature", "the Stripe-Signature header is required")
    settings = context.settings
    verify_signature(
        payload, signature, settings.stripe_webhook_secrets, int(settings.stripe_webhook_tolerance.total_seconds())
    )
    event = parse_event(payload)
    # Stored (with the events of concurrent requests, in one autocommitted statement) before Stripe hears 2xx,
    # and before the workflow hears of it.
    stored = await context.webhook_inbox.store(event, payload.decode())
    # The statement announced a new event of one of our families; a worker process hands it over to the family's
    # workflow (workers/stripe_forwarder.py), so a burst of webhooks costs this process only the storing.
    return WebhookAck(received=True, duplicate=not stored.is_new, status=stored.status)


@router.post("/stripe", response_model=WebhookAck, summary="Receive a Stripe event (signed)")
async def receive_stripe_event(
    request: Request,
    context: ContextDep,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookAck:
    """Declared here for the OpenAPI document and the route table; ``api.stripe_intake`` answers it before
    FastAPI's routing, through the same ``accept_stripe_event``."""
    return await accept_stripe_event(context, await request.body(), stripe_signature)
