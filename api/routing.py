"""The router every capability declares its routes on: FastAPI's, minus a scan of routes that cannot match.

FastAPI matches an included router lazily: for each request the app asks every included router in turn, and
each one tries every route it holds, none skipped by path, so every request pays for scanning the routes of the
routers ahead of its own. Upstream's fix (fastapi PR #16159, open) skips a router by the prefix it is *included*
with; ours carry their prefix on the router itself, and several share ``/api/v1``.

So each router answers "no match" at once to a path that starts with none of its routes' literal beginnings
(the text before a route's first path parameter), and otherwise matches exactly as FastAPI does. A path that
starts with one of them still goes through FastAPI's own matching, so 404, 405 and slash redirects are
unchanged. Routers must be included without a prefix of their own (``api.main``): the beginnings are read
from the routes' paths, which carry the router's prefix and nothing added at inclusion.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette._utils import get_route_path  # the path FastAPI itself matches on (root_path removed)
from starlette.routing import Match, Route
from starlette.types import Scope


class IndexedRouter(APIRouter):
    _beginnings: tuple[str, ...] = ("",)
    _indexed_routes: int = -1

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and not get_route_path(scope).startswith(self._route_beginnings()):
            return Match.NONE, {}
        return super().matches(scope)

    def _route_beginnings(self) -> tuple[str, ...]:
        """Read again whenever routes were added (decorators run after the router is made)."""
        if self._indexed_routes != len(self.routes):
            beginnings = [
                # A route other than a plain path (a mount, a nested router) could match anything: never skip.
                route.path.split("{", 1)[0] if isinstance(route, Route) else ""
                for route in self.routes
            ]
            self._beginnings = tuple(sorted(set(beginnings))) or ("",)
            self._indexed_routes = len(self.routes)
        return self._beginnings
