"""A local SMTP sink: accepts every message, keeps it (see mailstore), and shows it over HTTP.

Run as `python -m devstack.smtp_sink --smtp-port S --http-port H --store DIR`. HTTP API:
`GET /api/messages[?to=addr]` (newest first), `GET /api/messages/{id}`, `DELETE /api/messages`;
`GET /` is a page for people. `SmtpSink` runs it as a ManagedProcess; stop() then start() on the same
ports simulates an SMTP outage.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import signal
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from aiohttp import web
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session

from devstack.mailstore import MessageStore
from devstack.ports import is_listening
from devstack.processes import ManagedProcess, Service

STORE_KEY = web.AppKey("store", MessageStore)


class _Handler:
    def __init__(self, store: MessageStore) -> None:
        self.store = store

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        data = raw if isinstance(raw, bytes) else raw.encode()
        self.store.add(data, envelope.mail_from or "", list(envelope.rcpt_tos))
        return "250 Message accepted for delivery"


def _accept_any_login(*_args: Any) -> AuthResult:
    # A sink takes every credential, so a configured SMTP username/password works against it too.
    return AuthResult(success=True)


def _page(store: MessageStore) -> str:
    rows = []
    for m in store.list():
        link = quote(m["id"])
        views = [f'<a href="/messages/{link}/{kind}">{kind}</a>' for kind in ("html", "text", "raw")]
        cells = [m["received_at"][:19].replace("T", " "), m["mail_from"], ", ".join(m["rcpt_tos"]), m["subject"]]
        rows.append(
            "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + f"<td>{' '.join(views)}</td></tr>"
        )
    body = "\n".join(rows) or '<tr><td colspan="5">No messages yet.</td></tr>'
    return (
        '<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5">'
        "<title>Cedar mail</title><style>body{font-family:sans-serif}td,th{padding:4px 8px;"
        "border-bottom:1px solid #ddd;text-align:left}</style></head><body><h1>Cedar mail</h1>"
        f"<p>{len(store.list())} message(s). JSON at <code>/api/messages</code>.</p><table>"
        f"<tr><th>Received (UTC)</th><th>From</th><th>To</th><th>Subject</th><th>View</th></tr>{body}"
        "</table></body></html>"
    )


def _message_or_404(request: web.Request) -> dict[str, Any]:
    message = request.app[STORE_KEY].get(request.match_info["id"])
    if message is None:
        raise web.HTTPNotFound(text="no such message")
    return message


async def _index(request: web.Request) -> web.Response:
    return web.Response(text=_page(request.app[STORE_KEY]), content_type="text/html")


async def _list(request: web.Request) -> web.Response:
    return web.json_response(request.app[STORE_KEY].list(request.query.get("to")))


async def _get(request: web.Request) -> web.Response:
    return web.json_response(_message_or_404(request))


async def _clear(request: web.Request) -> web.Response:
    return web.json_response({"deleted": request.app[STORE_KEY].clear()})


async def _view(request: web.Request) -> web.Response:
    message = _message_or_404(request)
    kind = request.match_info["kind"]
    if kind == "html" and message["html"] is not None:
        # The mail's own HTML runs in a sandbox (no scripts, an opaque origin), not as this page's origin.
        headers = {"Content-Security-Policy": "sandbox"}
        return web.Response(text=message["html"], content_type="text/html", headers=headers)
    if kind == "text" and message["text"] is not None:
        return web.Response(text=message["text"], content_type="text/plain")
    if kind == "raw":
        raw = request.app[STORE_KEY].raw(message["id"]) or b""
        return web.Response(body=raw, content_type="text/plain", charset="utf-8")
    raise web.HTTPNotFound(text=f"this message has no {kind} part")


def build_app(store: MessageStore) -> web.Application:
    app = web.Application()
    app[STORE_KEY] = store
    app.router.add_get("/", _index)
    app.router.add_get("/api/messages", _list)
    app.router.add_delete("/api/messages", _clear)
    app.router.add_get("/api/messages/{id}", _get)
    app.router.add_get("/messages/{id}/{kind}", _view)
    return app


async def serve(host: str, smtp_port: int, http_port: int, store_dir: Path) -> None:
    """Serve SMTP and HTTP on this loop until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    store = MessageStore(store_dir)
    handler = _Handler(store)
    smtp_server = await loop.create_server(
        # A fixed hostname: the default asks DNS for this machine's FQDN, which can take seconds offline.
        lambda: SMTP(
            handler,
            hostname="cedar-smtp-sink",
            enable_SMTPUTF8=True,
            authenticator=_accept_any_login,
            auth_require_tls=False,
            loop=loop,
        ),
        host,
        smtp_port,
    )
    runner = web.AppRunner(build_app(store), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, http_port).start()
    print(f"SMTP on {host}:{smtp_port}, mail page on http://{host}:{http_port}/", flush=True)
    stopping = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    await stopping.wait()
    smtp_server.close()
    await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.smtp_sink")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--smtp-port", type=int, required=True)
    parser.add_argument("--http-port", type=int, required=True)
    parser.add_argument("--store", type=Path, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.smtp_port, args.http_port, args.store))


class SmtpSink(Service):
    """The sink as a child process; its messages are read back over HTTP."""

    def __init__(
        self, smtp_port: int, http_port: int, store_dir: Path, log_dir: Path, *, host: str = "127.0.0.1"
    ) -> None:
        self.smtp_port = smtp_port
        self.http_port = http_port
        self.host = host
        args = [sys.executable, "-m", "devstack.smtp_sink", "--host", host, "--smtp-port", str(smtp_port)]
        args += ["--http-port", str(http_port), "--store", str(Path(store_dir).absolute())]
        self.process = ManagedProcess("smtp-sink", args, Path(log_dir))

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    def start(self, timeout: float = 30.0) -> None:
        self.process.start()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        self.process.wait_ready(self.is_ready, timeout=timeout, interval=0.05)

    def is_ready(self) -> bool:
        if not is_listening(self.smtp_port, self.host):
            return False
        return httpx.get(f"{self.http_url}/api/messages", timeout=1).status_code == 200

    def messages(self, to: str | None = None) -> list[dict[str, Any]]:
        """Received messages, newest first; `to` filters by recipient."""
        params = {"to": to} if to is not None else {}
        response = httpx.get(f"{self.http_url}/api/messages", params=params, timeout=10)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()
        return result

    def clear(self) -> None:
        httpx.delete(f"{self.http_url}/api/messages", timeout=10).raise_for_status()

    async def wait_for_messages(
        self,
        to: str,
        count: int = 1,
        timeout: float = 10.0,  # noqa: ASYNC109 (a polling deadline, not a cancellation scope)
    ) -> list[dict[str, Any]]:
        """Poll (without blocking the event loop) until `to` has at least `count` messages."""
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=10) as client:
            while True:
                response = await client.get(f"{self.http_url}/api/messages", params={"to": to})
                found: list[dict[str, Any]] = response.json()
                if len(found) >= count:
                    return found
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(found)} of {count} message(s) to {to} after {timeout}s")
                await asyncio.sleep(0.1)


if __name__ == "__main__":
    main()
