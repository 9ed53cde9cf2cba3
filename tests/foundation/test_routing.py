"""``api.routing.IndexedRouter``: a router skips paths none of its routes can match, and routes as FastAPI does."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from starlette.routing import Match

from api.routing import IndexedRouter


def two_routers() -> tuple[FastAPI, IndexedRouter, IndexedRouter]:
    lessons = IndexedRouter(prefix="/api/v1/lessons")
    catalog = IndexedRouter(prefix="/api/v1")

    @lessons.get("")
    async def list_lessons() -> str:
        return "lessons"

    @lessons.get("/{lesson_id}")
    async def one_lesson(lesson_id: int) -> int:
        return lesson_id

    @catalog.get("/instruments")
    async def instruments() -> str:
        return "instruments"

    app = FastAPI()
    app.include_router(lessons)
    app.include_router(catalog)
    return app, lessons, catalog


def client_of(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def http(path: str) -> dict[str, object]:
    return {"type": "http", "path": path, "root_path": "", "method": "GET", "headers": [], "query_string": b""}


def test_a_router_answers_no_match_at_once_to_a_path_outside_its_routes() -> None:
    _app, lessons, catalog = two_routers()
    assert lessons.matches(http("/api/v1/instruments")) == (Match.NONE, {})
    assert catalog.matches(http("/api/v1/lessons/7")) == (Match.NONE, {})
    assert lessons._route_beginnings() == ("/api/v1/lessons", "/api/v1/lessons/")


async def test_requests_reach_the_same_routes_with_the_same_errors_as_before() -> None:
    app, _lessons, _catalog = two_routers()
    client = client_of(app)
    assert (await client.get("/api/v1/lessons")).json() == "lessons"
    assert (await client.get("/api/v1/lessons/7")).json() == 7
    assert (await client.get("/api/v1/instruments")).json() == "instruments"
    assert (await client.get("/api/v1/lessons/seven")).status_code == 422  # the path parameter is still validated
    assert (await client.post("/api/v1/instruments")).status_code == 405
    assert (await client.get("/api/v1/nothing")).status_code == 404
    redirected = await client.get("/api/v1/instruments/", follow_redirects=False)
    assert (redirected.status_code, redirected.headers["location"]) == (307, "http://testserver/api/v1/instruments")


async def test_a_route_added_after_the_first_request_is_found() -> None:
    app, _lessons, catalog = two_routers()
    client = client_of(app)
    assert (await client.get("/api/v1/instruments")).status_code == 200  # the router has read its routes' beginnings

    @catalog.get("/rates")
    async def rates() -> str:
        return "rates"

    assert (await client.get("/api/v1/rates")).json() == "rates"
