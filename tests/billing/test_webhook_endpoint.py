"""The webhook endpoint: only events signed with a configured secret within the tolerance get in, once each;
an event for a customer we do not know is kept and flagged."""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select, text
from sqlmodel import col
from starlette.types import ASGIApp, Receive, Scope, Send

from api.main import create_app
from api.stripe_intake import StripeWebhookIntake
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.tokens import issue_access_token
from models import Role, StripeEvent, User
from tests.billing.conftest import count, family_with_customer, sign, stripe_event

OLD, NEW = "whsec_rotated_out_soon", "whsec_rotated_in"


@pytest.fixture
async def webhook_api(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(stripe_webhook_secrets=[NEW, OLD]))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cedar.test") as client,
    ):
        yield client


def _event(customer: str = "cus_nobody_knows") -> dict[str, Any]:
    return stripe_event("invoice.payment_succeeded", {"id": "in_test_1", "object": "invoice", "customer": customer})


async def _post(client: httpx.AsyncClient, body: bytes, signature: str | None) -> httpx.Response:
    headers = {"Content-Type": "application/json"}
    if signature is not None:
        headers["Stripe-Signature"] = signature
    return await client.post("/api/v1/webhooks/stripe", content=body, headers=headers)


async def test_bad_stale_and_missing_signatures_are_refused_and_nothing_is_stored(
    webhook_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    body = json.dumps(_event()).encode()
    missing = await _post(webhook_api, body, None)
    assert (missing.status_code, missing.json()["error"]) == (400, "missing_signature")
    wrong_secret = await _post(webhook_api, body, sign(body, "whsec_someone_else"))
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "bad_signature")
    stale = await _post(webhook_api, body, sign(body, NEW, int(time.time()) - 301))
    assert stale.status_code == 401
    tampered = await _post(webhook_api, body.replace(b"in_test_1", b"in_test_2"), sign(body, NEW))
    assert tampered.status_code == 401
    garbage = await _post(webhook_api, b"not json", sign(b"not json", NEW))
    assert (garbage.status_code, garbage.json()["error"]) == (400, "bad_payload")
    assert await count(sessions, StripeEvent) == 0


async def test_a_rotated_out_secret_still_verifies_and_an_unknown_customer_is_kept_once(
    webhook_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    event = _event()
    body = json.dumps(event).encode()
    started = time.perf_counter()
    first = await _post(webhook_api, body, sign(body, OLD))
    elapsed = time.perf_counter() - started
    again = await _post(webhook_api, body, sign(body, NEW))
    assert first.status_code == again.status_code == 200
    assert first.json() == {"received": True, "duplicate": False, "status": "unknown_customer"}
    assert again.json()["duplicate"] is True
    assert elapsed < 1.0  # acknowledged well under a second
    async with sessions() as session:
        rows = list(await session.scalars(select(StripeEvent)))
    assert [(r.stripe_event_id, r.status, r.stripe_customer_id) for r in rows] == [
        (event["id"], "unknown_customer", "cus_nobody_knows")
    ]
    assert rows[0].payload == event


async def test_concurrent_deliveries_are_stored_together_once_each_and_each_request_hears_of_its_own_event(
    webhook_api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    _parent_id, customer = await family_with_customer(sessions)
    ours = _event(customer)
    no_customer = stripe_event("plan.created", {"id": "plan_bench", "object": "plan"})
    strangers = [_event(f"cus_stranger_{n}") for n in range(30)]
    expected = {ours["id"]: "received", no_customer["id"]: "ignored"} | {e["id"]: "unknown_customer" for e in strangers}
    deliveries = [ours, ours, ours, no_customer, no_customer, *strangers]
    random.shuffle(deliveries)
    bodies = [json.dumps(event).encode() for event in deliveries]
    answers = await asyncio.gather(*(_post(webhook_api, body, sign(body, NEW)) for body in bodies))

    acks: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for event, answer in zip(deliveries, answers, strict=True):
        assert answer.status_code == 200
        acks[event["id"]].append(answer.json())
    for event_id, answered in acks.items():
        assert {ack["status"] for ack in answered} == {expected[event_id]}
        assert sorted(ack["duplicate"] for ack in answered) == [False] + [True] * (len(answered) - 1)
    async with sessions() as session:
        stored = (await session.execute(text("SELECT stripe_event_id, status, xmin::text FROM stripe_events"))).all()
    assert {row[0]: row[1] for row in stored} == expected
    assert len(stored) == len(expected)
    # Rows one statement wrote share its transaction id: the 32 events took fewer statements than events.
    assert len({row[2] for row in stored}) < len(expected)


async def test_an_event_postgresql_cannot_store_fails_only_its_own_request(
    make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    app = create_app(make_settings(stripe_webhook_secrets=[NEW]))
    good = [_event(f"cus_stranger_{n}") for n in range(5)]
    bad = _event()
    bad["data"]["object"]["description"] = "NUL\u0000"  # valid JSON; PostgreSQL's jsonb refuses it
    async with app.router.lifespan_context(app):
        inbox = app.state.context.webhook_inbox
        outcomes = await asyncio.gather(
            *(inbox.store(event, json.dumps(event)) for event in [*good[:2], bad, *good[2:]]), return_exceptions=True
        )
    assert [type(outcome).__name__ for outcome in outcomes] == ["StoredEvent"] * 2 + [
        "UntranslatableCharacterError"
    ] + ["StoredEvent"] * 3
    async with sessions() as session:
        stored = set(await session.scalars(select(col(StripeEvent.stripe_event_id))))
    assert stored == {event["id"] for event in good}


async def test_renewals_on_demand_are_refused_in_production(
    make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    production = make_settings(
        environment="production",
        jwt_secret="p" * 48,
        stripe_api_key="sk_live_cedar",
        stripe_publishable_key="pk_live_cedar",
        stripe_api_base="",
        public_base_url="https://school.cedar.test",
        payload_keys={"2026-01": "cHJvZHVjdGlvbi1wYXlsb2FkLWtleS1mb3ItdGVzdHM="},
        payload_key_current="2026-01",
    )
    async with transaction(sessions) as session:
        admin = User(email=f"admin-{uuid.uuid4().hex[:8]}@cedar.test", role=Role.admin)
        session.add(admin)
    token = issue_access_token(production, admin.id, admin.email, Role.admin)
    app = create_app(production)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cedar.test") as client,
    ):
        response = await client.post(
            f"/api/v1/billing/subscriptions/{uuid.uuid4()}/renewals", headers={"Authorization": f"Bearer {token}"}
        )
    assert (response.status_code, response.json()["error"]) == (403, "development_only")


async def test_the_fast_intake_keeps_the_request_hygiene_and_the_documented_route(
    webhook_api: httpx.AsyncClient, make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    """The webhook is answered before FastAPI's routing (``api.stripe_intake``): the size limit, the request id
    and the security headers still apply, and the OpenAPI document still describes it."""
    body = json.dumps(_event()).encode()
    accepted = await _post(webhook_api, body, sign(body, NEW))
    assert accepted.status_code == 200
    assert accepted.headers["content-type"] == "application/json"
    assert accepted.headers["x-request-id"]
    for name in make_settings().security_headers:
        assert name.lower() in accepted.headers
    limit = make_settings().max_request_body_bytes
    event = _event()
    event["data"]["object"]["description"] = "x" * limit
    too_big = json.dumps(event).encode()
    refused = await _post(webhook_api, too_big, sign(too_big, NEW))
    assert (refused.status_code, refused.json()["error"]) == (413, "payload_too_large")
    not_an_event = json.dumps([1, 2]).encode()
    wrong_shape = await _post(webhook_api, not_an_event, sign(not_an_event, NEW))
    assert (wrong_shape.status_code, wrong_shape.json()["error"]) == (400, "bad_payload")
    assert wrong_shape.json()["fields"] == {}
    odd = _event()
    odd["id"] = "evt_" + "x" * 252
    odd["data"]["object"] = "in_test_1"
    odd_body = json.dumps(odd).encode()
    unstorable = await _post(webhook_api, odd_body, sign(odd_body, NEW))
    assert (unstorable.status_code, unstorable.json()["fields"]) == (
        400,
        {"id": "at most 255 characters", "data.object": "must be an object"},
    )
    async with sessions() as session:
        assert len(list(await session.scalars(select(StripeEvent)))) == 1
    operation = (await webhook_api.get("/openapi.json")).json()["paths"]["/api/v1/webhooks/stripe"]["post"]
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/WebhookAck")


async def test_the_intake_answers_the_webhook_itself_and_passes_every_other_request_on(
    make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    app = create_app(make_settings(stripe_webhook_secrets=[NEW]))
    passed_on: list[str] = []

    async def rest_of_the_app(scope: Scope, receive: Receive, send: Send) -> None:
        passed_on.append(f"{scope['method']} {scope['path']}")
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    intake = StripeWebhookIntake(rest_of_the_app)
    transport = httpx.ASGITransport(app=_with_app(intake, app))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as c,
    ):
        body = json.dumps(_event()).encode()
        answered = await _post(c, body, sign(body, NEW))
        other = await c.get("/api/v1/webhooks/stripe")
        elsewhere = await c.post("/api/v1/enrollments", json={})
    assert answered.json() == {"received": True, "duplicate": False, "status": "unknown_customer"}
    assert (other.status_code, elsewhere.status_code) == (204, 204)
    assert passed_on == ["GET /api/v1/webhooks/stripe", "POST /api/v1/enrollments"]
    assert await count(sessions, StripeEvent) == 1


def _with_app(inner: ASGIApp, app: FastAPI) -> ASGIApp:
    """What Starlette does for its middleware: the app (and so its state) is in the scope."""

    async def call(scope: Scope, receive: Receive, send: Send) -> None:
        await inner({**scope, "app": app}, receive, send)

    return call
