"""One error shape for every failure the API reports: ``{"error", "detail", "fields"}``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException


class CedarError(Exception):
    """An expected business failure: always a 4xx with a machine-readable code and a human message."""

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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(CedarError, _cedar_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
