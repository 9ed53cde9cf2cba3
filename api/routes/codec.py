"""``/codec``: Temporal's codec-server protocol, so the Temporal UI shows Cedar's sealed payloads (docs/privacy.md).

Admins only (a bearer token the UI passes along); CORS for the Temporal UI's origin alone; every decode that opened
a family's payloads leaves one audit row per family.
"""

from __future__ import annotations

import base64
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from pydantic import Base64Bytes, BaseModel, Field, field_validator
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.api.common.v1 import Payload

from api.deps import ContextDep, SettingsDep, TransactionDep
from api.middleware import request_id
from api.principal import BearerCredentials, ensure_role, resolve_principal
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.services import codec
from api.services.codec import CodecCaller
from core.settings import Settings
from models import Role

PREFIX = "/codec"
MAX_PAYLOADS = 1000

router = IndexedRouter(prefix=PREFIX, tags=["codec"], responses=error_responses(401, 403, 422))


class PayloadJson(BaseModel):
    """A Temporal payload in protobuf's JSON form: metadata values and data in base64."""

    metadata: dict[Annotated[str, Field(max_length=256)], Base64Bytes] = Field(default_factory=dict, max_length=64)
    data: Base64Bytes = b""

    @field_validator("metadata")
    @classmethod
    def _keys_are_text(cls, value: dict[str, bytes]) -> dict[str, bytes]:
        for key in value:
            try:
                key.encode()
            except UnicodeEncodeError:
                raise ValueError("metadata keys must be valid Unicode text") from None
        return value


class PayloadsJson(BaseModel):
    payloads: list[PayloadJson] = Field(max_length=MAX_PAYLOADS)


def _from_json(body: PayloadsJson) -> list[Payload]:
    return [Payload(metadata=dict(p.metadata), data=p.data) for p in body.payloads]


def _to_json(payloads: list[Payload]) -> dict[str, Any]:
    return {
        "payloads": [{"metadata": {k: _b64(v) for k, v in p.metadata.items()}, "data": _b64(p.data)} for p in payloads]
    }


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode()


def ui_without_sign_in(request: Request, settings: Settings) -> bool:
    """The dev server's UI cannot send a token: in development it is served unsigned, from its own origin only."""
    return (
        settings.environment == "development"
        and settings.codec_open_in_development
        and bool(request.scope.get("state", {}).get("codec_ui_origin"))
    )


async def codec_caller(
    request: Request,
    session: TransactionDep,
    settings: SettingsDep,
    credentials: BearerCredentials,
    x_namespace: Annotated[str, Header(max_length=255)] = "",
) -> CodecCaller:
    if credentials is None and ui_without_sign_in(request, settings):
        return CodecCaller(None, x_namespace)
    principal = await resolve_principal(request, session, settings, credentials)
    return CodecCaller(ensure_role(principal, Role.admin), x_namespace)


CodecCallerDep = Annotated[CodecCaller, Depends(codec_caller)]


@router.post("/decode", summary="Open sealed Temporal payloads (the Temporal UI's codec server)")
async def decode_payloads(
    body: PayloadsJson, request: Request, session: TransactionDep, context: ContextDep, caller: CodecCallerDep
) -> dict[str, Any]:
    keyring = context.temporal.keyring
    assert keyring is not None  # the app always builds its client with the keyring
    opened = await codec.decode(session, keyring, caller, _from_json(body), request_id(request))
    return _to_json(opened)


@router.post("/encode", summary="Seal Temporal payloads (the Temporal UI's codec server)")
async def encode_payloads(body: PayloadsJson, context: ContextDep, caller: CodecCallerDep) -> dict[str, Any]:
    keyring = context.temporal.keyring
    assert keyring is not None
    return _to_json(await codec.encode(keyring, _from_json(body)))


class CodecCors:
    """CORS for ``/codec`` alone: the Temporal UI's origin and no other (the app's CORS never sees these requests);
    and no caching of what the codec answers.

    It marks a request from the UI's origin, so the development UI can be told apart (see ``ui_without_sign_in``).
    """

    def __init__(self, app: ASGIApp, origin: str) -> None:
        self.app = app
        self.origin = origin

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not (scope["path"] == PREFIX or scope["path"].startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        origin = headers.get(b"origin", b"").decode("latin-1")
        allowed = bool(origin) and origin == self.origin
        if scope["method"] == "OPTIONS" and origin and b"access-control-request-method" in headers:
            await self._preflight(send, allowed)
            return
        inner = dict(scope)
        inner["headers"] = [(k, v) for k, v in scope["headers"] if k != b"origin"]
        inner["state"] = {**scope.get("state", {}), "codec_ui_origin": allowed}

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Opened payloads are personal data: no cache may keep them.
                extra = [(b"cache-control", b"no-store"), *(self._cors_headers() if allowed else [])]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(inner, receive, send_with_cors)

    def _cors_headers(self) -> list[tuple[bytes, bytes]]:
        return [
            (b"access-control-allow-origin", self.origin.encode("latin-1")),
            (b"access-control-allow-credentials", b"true"),
            (b"vary", b"Origin"),
        ]

    async def _preflight(self, send: Send, allowed: bool) -> None:
        headers = [(b"content-length", b"0"), (b"vary", b"Origin")]
        if allowed:
            headers += [
                *self._cors_headers()[:2],
                (b"access-control-allow-methods", b"POST, OPTIONS"),
                (b"access-control-allow-headers", b"authorization, content-type, x-namespace"),
                (b"access-control-max-age", b"600"),
            ]
        await send({"type": "http.response.start", "status": 200 if allowed else 403, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
