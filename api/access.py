"""Which roles may call each route: ``(METHOD, path template) -> roles`` from {public, parent, teacher, admin}.

A test generated from the app's route table fails for any route without a declared rule here.
"""

from __future__ import annotations

ROUTE_ACCESS: dict[tuple[str, str], frozenset[str]] = {}
