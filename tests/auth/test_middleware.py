"""Request hygiene on every route: body size limit (413 in the error shape), security headers, request ids."""

from __future__ import annotations

import httpx

from core.settings import Settings
from tests.auth.conftest import AUTH


async def test_an_oversized_body_is_refused_with_413(api: httpx.AsyncClient, settings: Settings) -> None:
    body = b'{"email": "' + b"a" * settings.max_request_body_bytes + b'@x.y", "password": "p"}'
    response = await api.post(f"{AUTH}/login", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"
    assert response.json()["fields"] == {}


async def test_a_chunked_oversized_body_is_refused_too(api: httpx.AsyncClient, settings: Settings) -> None:
    async def chunks():  # no Content-Length: the limit must count what actually arrives
        for _ in range(settings.max_request_body_bytes // 1024 + 2):
            yield b"x" * 1024

    response = await api.post(f"{AUTH}/login", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


async def test_security_headers_and_a_request_id_on_every_answer(api: httpx.AsyncClient) -> None:
    for response in (await api.get("/health"), await api.get(f"{AUTH}/me"), await api.get("/no/such/route")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert len(response.headers["x-request-id"]) == 32
    docs = await api.get("/docs")
    assert docs.status_code == 200
    assert "content-security-policy" not in docs.headers  # the page has inline scripts


async def test_a_well_formed_request_id_is_echoed_and_a_hostile_one_replaced(api: httpx.AsyncClient) -> None:
    echoed = await api.get("/health", headers={"X-Request-ID": "trace-abc.123"})
    assert echoed.headers["x-request-id"] == "trace-abc.123"
    replaced = await api.get("/health", headers={"X-Request-ID": "<script>" + "x" * 100})
    assert replaced.headers["x-request-id"] != "<script>" + "x" * 100
    assert len(replaced.headers["x-request-id"]) == 32


async def test_text_postgresql_cannot_store_is_a_422_not_a_500(api: httpx.AsyncClient) -> None:
    nul = await api.post(
        f"{AUTH}/login",
        content=b'{"email": "a\\u0000@b.c", "password": "p"}',
        headers={"content-type": "application/json"},
    )
    lone_surrogate = await api.post(
        f"{AUTH}/login",
        content=b'{"email": "\\ud800@b.c", "password": "p"}',
        headers={"content-type": "application/json"},
    )
    in_query = await api.get("/health?x=%00")
    for response in (nul, lone_surrogate, in_query):
        assert response.status_code == 422, response.text
        assert response.json()["fields"] == {"request": "text may not contain NUL characters or unpaired surrogates"}
    escaped_backslash = await api.post(
        f"{AUTH}/login",
        content=b'{"email": "a\\\\u0000@b.c", "password": "p"}',
        headers={"content-type": "application/json"},
    )
    assert escaped_backslash.status_code == 401  # a literal backslash-u is ordinary text
