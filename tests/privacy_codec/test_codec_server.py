"""The codec server the Temporal UI calls: it opens payloads for an admin only, answers CORS for the UI's origin
only, audits each family whose payloads it opened, and shows a shredded payload as unreadable."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory, transaction
from core.payload_keys import PayloadKeyring, destroy_family_keys
from core.settings import Settings
from models import AuditLog, Role
from tests.privacy_codec.helpers import as_json, family_codec, from_json, plain


async def test_an_admin_reads_a_familys_payloads_and_each_read_is_audited_once_per_family(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings, auth_headers: Callable[..., Any]
) -> None:
    keyring = PayloadKeyring(settings, sessions)
    parent, other = uuid.uuid4(), uuid.uuid4()
    sealed = await family_codec(keyring, parent).encode([plain("first"), plain({"amount_due_minor": 5150})])
    sealed_other = await family_codec(keyring, other).encode([plain("other")])
    body = as_json([*sealed, *sealed_other, plain("never sealed")])
    admin = await auth_headers(Role.admin)

    answer = await api.post("/codec/decode", json=body, headers={**admin, "X-Namespace": "default"})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    assert from_json(answer.json()) == [
        plain("first"),
        plain({"amount_due_minor": 5150}),
        plain("other"),
        plain("never sealed"),
    ]
    async with sessions() as session:
        rows = list(await session.scalars(select(AuditLog).where(col(AuditLog.action) == "decode")))
    assert sorted((r.entity_type, r.entity_id, r.after) for r in rows) == sorted(
        [
            ("family_payloads", str(parent), {"payloads": 2, "namespace": "default"}),
            ("family_payloads", str(other), {"payloads": 1, "namespace": "default"}),
        ]
    )
    assert {r.actor_role for r in rows} == {"admin"}

    # What the UI encodes (a signal it sends) comes back sealed, and opens again.
    encoded = await api.post("/codec/encode", json=as_json([plain("from the UI")]), headers=admin)
    assert encoded.status_code == 200, encoded.text
    assert from_json(encoded.json())[0].metadata["encoding"] == b"binary/encrypted"
    again = await api.post("/codec/decode", json=encoded.json(), headers=admin)
    assert from_json(again.json()) == [plain("from the UI")]

    # Erased: the family's payloads come back marked unreadable, the other family's still open.
    async with transaction(sessions) as session:
        assert await destroy_family_keys(session, parent) == 1
    api_keyring = api._transport.app.state.context.temporal.keyring  # type: ignore[attr-defined]
    api_keyring.forget_family(parent)
    shredded = await api.post("/codec/decode", json=body, headers=admin)
    opened = from_json(shredded.json())
    assert [p.metadata.get("cedar-unreadable") for p in opened] == [b"key-destroyed", b"key-destroyed", None, None]
    assert b"first" not in opened[0].data
    assert opened[2] == plain("other")


async def test_only_admins_may_decode(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings, auth_headers: Callable[..., Any]
) -> None:
    sealed = await family_codec(PayloadKeyring(settings, sessions), uuid.uuid4()).encode([plain("secret")])
    body = as_json(sealed)
    for path in ("/codec/decode", "/codec/encode"):
        assert (await api.post(path, json=body)).status_code == 401
        for role in (Role.parent, Role.teacher):
            assert (await api.post(path, json=body, headers=await auth_headers(role))).status_code == 403
    # Outside development, coming from the UI's origin is no sign-in.
    from_ui = {"Origin": settings.effective_temporal_ui_origin}
    assert (await api.post("/codec/decode", json=body, headers=from_ui)).status_code == 401
    surrogate = b'{"payloads": [{"metadata": {"\\ud800": ""}, "data": ""}]}'
    admin = {**await auth_headers(Role.admin), "Content-Type": "application/json"}
    assert (await api.post("/codec/decode", content=surrogate, headers=admin)).status_code == 422
    bad = await api.post(
        "/codec/decode", json={"payloads": [{"data": "not base64!"}]}, headers=await auth_headers(Role.admin)
    )
    assert bad.status_code == 422
    async with sessions() as session:
        assert list(await session.scalars(select(AuditLog).where(col(AuditLog.action) == "decode"))) == []


async def test_cors_answers_the_temporal_ui_origin_only(
    api: httpx.AsyncClient, settings: Settings, auth_headers: Callable[..., Any]
) -> None:
    ui = settings.effective_temporal_ui_origin
    app_origin = settings.cors_origins[0]  # allowed on the API, not on the codec server
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization,x-namespace"}
    allowed = await api.options("/codec/decode", headers={**preflight, "Origin": ui})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ui
    assert "authorization" in allowed.headers["access-control-allow-headers"]
    refused = await api.options("/codec/decode", headers={**preflight, "Origin": app_origin})
    assert refused.status_code == 403
    assert "access-control-allow-origin" not in refused.headers

    admin = await auth_headers(Role.admin)
    body: dict[str, Any] = {"payloads": []}
    from_ui = await api.post("/codec/decode", json=body, headers={**admin, "Origin": ui})
    assert from_ui.status_code == 200
    assert from_ui.headers["access-control-allow-origin"] == ui
    from_app = await api.post("/codec/decode", json=body, headers={**admin, "Origin": app_origin})
    assert "access-control-allow-origin" not in from_app.headers
    # The rest of the API keeps its own CORS.
    health = await api.get("/api/v1/health", headers={"Origin": app_origin})
    assert health.headers.get("access-control-allow-origin") == app_origin


async def test_the_development_ui_is_served_without_a_token_from_its_origin_only(
    make_settings: Callable[..., Settings], sessions: SessionFactory
) -> None:
    from api.main import create_app

    settings = make_settings(environment="development")
    sealed = await family_codec(PayloadKeyring(settings, sessions), uuid.uuid4()).encode([plain("dev")])
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as client,
    ):
        ui = {"Origin": settings.effective_temporal_ui_origin}
        answer = await client.post("/codec/decode", json=as_json(sealed), headers=ui)
        assert answer.status_code == 200, answer.text
        assert from_json(answer.json()) == [plain("dev")]
        assert (await client.post("/codec/decode", json=as_json(sealed))).status_code == 401
        elsewhere = {"Origin": "http://evil.example"}
        assert (await client.post("/codec/decode", json=as_json(sealed), headers=elsewhere)).status_code == 401
    async with sessions() as session:
        rows = list(await session.scalars(select(AuditLog).where(col(AuditLog.action) == "decode")))
    assert [(r.actor_role, r.actor_user_id) for r in rows] == [("public", None)]
