"""The route × role matrix, generated from the app's route table and checked against ``api.access.ROUTE_ACCESS``.

A route nobody declared fails here, and so does a declared route that answers a role differently: a role not
allowed must get 401 (anonymous) or 403 (signed in), an allowed role must never get either, nor a 5xx. "public"
means anyone, signed in or not.

People's pages (``api/pages/``) are called as a browser calls them: signed in by the session cookie, each form
with its CSRF token; for them "401" is the redirect to ``/sign-in``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from api.access import ROUTE_ACCESS
from api.main import create_app
from api.pages import is_page_path
from api.pages.web import CSRF_COOKIE, CSRF_FIELD, SESSION_COOKIE, csrf_for
from api.principal import Principal
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.tokens import issue_access_token
from models import Parent, Role, Teacher, User

ROLES = ("public", "parent", "teacher", "admin")
BODY_METHODS = {"POST", "PUT", "PATCH"}


def served_routes(app: FastAPI) -> Iterator[tuple[str, str]]:
    for route in iter_route_contexts(app.routes):
        for method in sorted((route.methods or set()) - {"HEAD"}):  # Starlette answers HEAD like GET
            yield method, route.path


def test_every_route_declares_who_may_call_it() -> None:
    served = set(served_routes(create_app(Settings())))
    undeclared = sorted(served - ROUTE_ACCESS.keys())
    stale = sorted(ROUTE_ACCESS.keys() - served)
    assert not undeclared, f"declare these routes in api/access.py ROUTE_ACCESS: {undeclared}"
    assert not stale, f"api/access.py declares routes the app does not serve: {stale}"
    for route, roles in ROUTE_ACCESS.items():
        assert roles and roles <= set(ROLES), f"{route}: roles must be a non-empty subset of {ROLES}"


@dataclass(frozen=True)
class Caller:
    """How one role calls: bearer headers for the API; a session cookie and a form's CSRF token for pages."""

    headers: dict[str, str]
    cookies: str
    csrf: str


async def _callers(sessions: SessionFactory, settings: Settings) -> dict[str, Caller]:
    tag = uuid.uuid4().hex[:8]
    async with transaction(sessions) as session:
        users = {role: User(email=f"matrix-{role}-{tag}@cedar.test", role=role) for role in Role}
        session.add_all(users.values())
        await session.flush()
        session.add(
            Parent(
                user_id=users[Role.parent].id,
                first_name="M",
                last_name="Atrix",
                email=users[Role.parent].email,
                phone="604-555-0199",
            )
        )
        session.add(
            Teacher(
                user_id=users[Role.teacher].id,
                first_name="M",
                last_name="Atrix",
                display_name="M A",
                email=users[Role.teacher].email,
                instruments=["piano"],
            )
        )
    seed = "matrix-seed-" + "x" * 32
    callers = {"public": Caller({}, f"{CSRF_COOKIE}={seed}", csrf_for(settings, seed, None))}
    for role, user in users.items():
        session_id = uuid.uuid4()
        token = issue_access_token(settings, user.id, user.email, role, session_id)
        principal = Principal(user.id, user.email, role, session_id=session_id)
        callers[str(role)] = Caller(
            {"Authorization": f"Bearer {token}"},
            f"{SESSION_COOKIE}={token}:; {CSRF_COOKIE}={seed}",
            csrf_for(settings, seed, principal),
        )
    return callers


def _concrete(path: str) -> str:
    # Unknown ids: an allowed role reaches the handler and gets its 404, which is neither 401 nor 403.
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


async def test_every_route_answers_every_role_as_declared(settings: Settings, sessions: SessionFactory) -> None:
    app = create_app(settings)
    callers = await _callers(sessions, settings)
    wrong: list[str] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as client:
            for method, path in sorted(set(served_routes(app))):
                allowed = ROUTE_ACCESS.get((method, path), frozenset())
                if "public" in allowed:  # open to anyone: a signed-in caller is not refused either
                    allowed = frozenset(ROLES)
                url = _concrete(path)
                page = is_page_path(path)
                for role in ROLES:
                    caller = callers[role]
                    client.cookies.clear()  # nothing a page set carries over to another role's call
                    if page:
                        form = {CSRF_FIELD: caller.csrf} if method in BODY_METHODS else None
                        response = await client.request(method, url, headers={"Cookie": caller.cookies}, data=form)
                    else:
                        body = {} if method in BODY_METHODS else None
                        response = await client.request(method, url, headers=caller.headers, json=body)
                    status = response.status_code
                    signed_out = status == 401
                    if page:
                        where = response.headers.get("location", "")
                        signed_out = status == 303 and (where == "/sign-in" or where.startswith("/sign-in?next="))
                    if role in allowed:
                        ok = not signed_out and status not in (401, 403) and status < 500
                    else:
                        ok = signed_out if role == "public" else status == 403
                    if not ok:
                        wrong.append(f"{method} {path} as {role}: {status} (allowed: {sorted(allowed)})")
    assert not wrong, "routes answering against their declared access:\n" + "\n".join(wrong)
