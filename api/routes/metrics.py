"""``GET /metrics``: Prometheus's scrape of this API process (docs/operations.md, "Observability").

The API is public, so the page is not: it answers the scrape job's ``CEDAR_METRICS_TOKEN`` (a bearer token) or
an admin's access token.
"""

from __future__ import annotations

import secrets

from fastapi import Request
from fastapi.responses import Response

from api.deps import ContextDep, SessionDep
from api.principal import BearerCredentials, ensure_role, resolve_principal
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from core.metrics import CONTENT_TYPE, CedarMetrics
from models import Role

router = IndexedRouter(tags=["metrics"], responses=error_responses(401, 403))


def _scrape_token_matches(expected: str | None, credentials: BearerCredentials) -> bool:
    if not expected or credentials is None or credentials.scheme.lower() != "bearer":
        return False
    return secrets.compare_digest(credentials.credentials.strip().encode(), expected.encode())


@router.get(
    "/metrics",
    summary="Prometheus metrics of this API process (the scrape token or an admin)",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text exposition"}},
)
async def metrics(
    request: Request, context: ContextDep, session: SessionDep, credentials: BearerCredentials
) -> Response:
    settings = context.settings
    token = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if not _scrape_token_matches(token, credentials):
        ensure_role(await resolve_principal(request, session, settings, credentials), Role.admin)
    registry: CedarMetrics = request.app.state.metrics
    await registry.refresh_from_db(session)
    await registry.refresh_from_temporal(context.temporal.get)
    return Response(content=registry.exposition(), media_type=CONTENT_TYPE)
