"""One error shape for every failure the API reports: ``{"error", "detail", "fields"}``."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from core.settings import Settings


class CedarError(Exception):
    """An expected failure with a machine-readable code and a human message: a 4xx for the caller's request, or
    a 503/504 when a service the API waits on is unavailable or too slow (with ``Retry-After`` when retrying is
    safe)."""

    def __init__(
        self,
        status_code: int,
        error: str,
        detail: str,
        fields: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.error = error
        self.detail = detail
        self.fields = fields or {}
        self.headers = headers


class NotFound(CedarError):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not_found", f"{what} not found")


class Conflict(CedarError):
    def __init__(self, detail: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(409, "conflict", detail, fields)


# PostgreSQL's lock_timeout (lock_not_available) and statement_timeout (query_canceled) on the API's connections.
_DATABASE_BUSY = {
    "55P03": "the records this request changes are busy with another change; retry shortly",
    "57014": "the database took too long to answer this request; retry shortly",
}


def retry_after_header(delay: timedelta) -> dict[str, str]:
    """The ``Retry-After`` header (whole seconds) of an answer a retry may cure."""
    return {"Retry-After": str(max(1, math.ceil(delay.total_seconds())))}


def error_body(error: str, detail: str, fields: dict[str, str] | None = None) -> dict[str, Any]:
    return {"error": error, "detail": detail, "fields": fields or {}}


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "student", "date_of_birth") -> "student.date_of_birth"
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "request"


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    fields: dict[str, str] = {}
    for problem in exc.errors():
        message = str(problem.get("msg", "invalid value")).removeprefix("Value error, ")
        fields.setdefault(_field_name(tuple(problem.get("loc", ()))), message)
    return JSONResponse(status_code=422, content=error_body("validation_error", "the request is invalid", fields))


async def _cedar_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CedarError)
    return JSONResponse(
        status_code=exc.status_code,
        content=error_body(exc.error, exc.detail, exc.fields),
        headers=exc.headers,
    )


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed"}.get(
        exc.status_code, "http_error"
    )
    return JSONResponse(
        status_code=exc.status_code,
        content=error_body(code, str(exc.detail)),
        headers=getattr(exc, "headers", None),
    )


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DBAPIError)
    detail = _DATABASE_BUSY.get(getattr(exc.orig, "sqlstate", None) or "")
    if detail is None:
        raise exc  # any other database failure is a server error, logged as one
    settings: Settings = request.app.state.context.settings
    return JSONResponse(
        status_code=503, content=error_body("busy", detail), headers=retry_after_header(settings.api_retry_after)
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(CedarError, _cedar_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
