"""``GET /health``: every dependency up or down; 200 only when all are up."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from api.deps import ContextDep
from api.health import check_all, supervised_processes
from api.routing import IndexedRouter

router = IndexedRouter(tags=["health"])


@router.get("/health", summary="Report each dependency as up or down")
async def health(context: ContextDep) -> JSONResponse:
    results = await check_all(context.settings, context.engine, context.temporal, context.mailer)
    healthy = all(result.status == "up" for result in results.values())
    body = {
        "status": "ok" if healthy else "degraded",
        "dependencies": {
            name: {"status": r.status, **({"error": r.error} if r.error else {})} for name, r in results.items()
        },
    }
    processes = supervised_processes(context.settings)
    if processes is not None:
        body["processes"] = processes
    return JSONResponse(status_code=200 if healthy else 503, content=body)
