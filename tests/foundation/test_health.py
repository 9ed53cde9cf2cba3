"""GET /health reports every dependency, and a stopped one as down with a 503."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from api.main import create_app
from core.settings import Settings
from devstack.ports import free_port


async def _health(settings: Settings) -> httpx.Response:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as client:
            return await client.get("/health")


async def test_health_is_200_when_every_dependency_is_up(api: httpx.AsyncClient) -> None:
    response = await api.get("/health")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ok"
    assert {name: dep["status"] for name, dep in body["dependencies"].items()} == {
        "database": "up",
        "temporal": "up",
        "stripe": "up",
        "smtp": "up",
    }


async def test_a_stopped_dependency_is_reported_down(make_settings: Callable[..., Settings]) -> None:
    # Nothing listens on a fresh free port: that is what a stopped SMTP server or Stripe looks like.
    response = await _health(make_settings(smtp_port=free_port(), stripe_api_base=f"http://127.0.0.1:{free_port()}"))
    assert response.status_code == 503
    dependencies = response.json()["dependencies"]
    assert dependencies["smtp"]["status"] == "down"
    assert dependencies["smtp"]["error"]
    assert dependencies["stripe"]["status"] == "down"
    assert dependencies["database"]["status"] == "up"


async def test_a_stopped_database_and_temporal_are_reported_down(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/cedar",
        temporal_address=f"127.0.0.1:{free_port()}",
    )
    response = await _health(settings)
    assert response.status_code == 503
    dependencies = response.json()["dependencies"]
    assert dependencies["database"]["status"] == "down"
    assert dependencies["temporal"]["status"] == "down"


async def test_openapi_docs_are_served(api: httpx.AsyncClient) -> None:
    assert (await api.get("/docs")).status_code == 200
    assert "/health" in (await api.get("/openapi.json")).json()["paths"]
