"""A stand-in for a Supabase project's Auth API: answers the real ``supabase`` client with recorded responses.

Each test queues the answers it expects (``will_answer("token_password_ok")``); a call nobody queued, or one whose
method, path or query differs from the recording, fails the test with a 599 the adapter cannot mistake for a
Supabase answer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from core.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"
PROJECT_URL = "http://127.0.0.1:54321"
PROJECT_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long"
ANON_KEY = "anon-key-of-the-local-project"
SERVICE_ROLE_KEY = "service-role-key-of-the-local-project"


def load(name: str) -> dict[str, Any]:
    recorded: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text())
    return recorded


def supabase_settings(make_settings: Any, **overrides: Any) -> Settings:
    settings: Settings = make_settings(
        supabase_url=PROJECT_URL,
        supabase_anon_key=ANON_KEY,
        supabase_service_role_key=SERVICE_ROLE_KEY,
        supabase_jwt_secret=PROJECT_JWT_SECRET,
        **overrides,
    )
    return settings


class FakeSupabase:
    def __init__(self) -> None:
        self.queue: list[str] = []
        self.received: list[httpx.Request] = []
        self.unexpected: list[str] = []
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self._answer))

    def will_answer(self, *names: str) -> None:
        self.queue.extend(names)

    def body(self, index: int) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.received[index].content or b"{}")
        return parsed

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.received.append(request)
        if not self.queue:
            return self._refuse(f"nothing queued for {request.method} {request.url.path}")
        recorded = load(self.queue.pop(0))
        expected = recorded["request"]
        query = dict(request.url.params)
        if (request.method, request.url.path) != (expected["method"], expected["path"]) or any(
            query.get(key) != value for key, value in expected["query"].items()
        ):
            return self._refuse(f"{request.method} {request.url.path}?{query} does not match {expected}")
        response = recorded["response"]
        content = b"" if response["body"] is None else json.dumps(response["body"]).encode()
        return httpx.Response(response["status"], headers=response["headers"], content=content)

    def _refuse(self, problem: str) -> httpx.Response:
        self.unexpected.append(problem)
        return httpx.Response(599, json={"message": problem})
