"""The container health check (standard library plus Cedar's settings): ``healthcheck.py URL`` succeeds when the
URL answers 200; ``healthcheck.py --temporal`` when Temporal's frontend accepts a connection."""

from __future__ import annotations

import socket
import sys
import urllib.request

TIMEOUT_SECONDS = 5


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 (a fixed local URL)
            return bool(response.status == 200)
    except OSError:
        return False


def temporal_reachable() -> bool:
    from core.settings import Settings

    host, _, port = Settings().effective_temporal_address.rpartition(":")
    try:
        socket.create_connection((host, int(port)), TIMEOUT_SECONDS).close()
    except OSError:
        return False
    return True


def main(argv: list[str]) -> int:
    if argv == ["--temporal"]:
        return 0 if temporal_reachable() else 1
    if len(argv) == 1:
        return 0 if http_ok(argv[0]) else 1
    print("usage: healthcheck.py URL | --temporal", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
