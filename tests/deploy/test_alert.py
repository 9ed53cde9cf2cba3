"""The single VM's watchdog (deploy/alert/check_stack.py) against a stand-in ``docker`` and a stand-in Cedar:
silent while all is well, one line per problem and a chat message otherwise."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "alert" / "check_stack.py"
HEALTHY: list[dict[str, Any]] = [
    {"Service": "postgres", "State": "running", "Health": "healthy"},
    {"Service": "api", "State": "running", "Health": "healthy"},
    {"Service": "worker", "State": "running", "Health": "healthy"},
    {"Service": "migrate", "State": "exited", "Health": "", "ExitCode": 0},
]


class Stand(http.server.BaseHTTPRequestHandler):
    """/health answers what the test sets; POSTs (the chat webhook) are recorded."""

    status: ClassVar[int] = 200
    posted: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        self.send_response(self.status)
        self.end_headers()
        self.wfile.write(b'{"status": "degraded"}' if self.status != 200 else b'{"status": "ok"}')

    def do_POST(self) -> None:
        self.posted.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def stand() -> Iterator[str]:
    Stand.status, Stand.posted = 200, []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Stand)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()


def check(tmp_path: Path, services: list[dict[str, Any]], url: str, **env: str) -> subprocess.CompletedProcess[str]:
    """Runs the watchdog with a ``docker`` that prints ``services`` as Compose does, one object per line."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    listing = tmp_path / "ps.json"
    listing.write_text("\n".join(json.dumps(service) for service in services))
    docker = bin_dir / "docker"
    docker.write_text(f'#!/bin/sh\n[ "$*" = "compose ps --all --format json" ] || exit 3\ncat "{listing}"\n')
    docker.chmod(0o755)
    inherited = {key: value for key, value in os.environ.items() if key != "ALERT_WEBHOOK_URL"}
    environment = {**inherited, "PATH": f"{bin_dir}:{os.environ['PATH']}", **env}
    return subprocess.run(
        [sys.executable, str(SCRIPT), url], capture_output=True, text=True, env=environment, timeout=60
    )


def test_all_healthy_is_silent(tmp_path: Path, stand: str) -> None:
    result = check(tmp_path, HEALTHY, f"{stand}/health")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_each_problem_is_a_line_and_a_chat_message(tmp_path: Path, stand: str) -> None:
    Stand.status = 503
    services: list[dict[str, Any]] = [
        {"Service": "postgres", "State": "running", "Health": "healthy"},
        {"Service": "worker", "State": "running", "Health": "unhealthy"},
        {"Service": "backup", "State": "restarting", "Health": ""},
        {"Service": "migrate", "State": "exited", "Health": "", "ExitCode": 1},
    ]
    result = check(tmp_path, services, f"{stand}/health", ALERT_WEBHOOK_URL=f"{stand}/hook")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines == [
        "worker: unhealthy",
        "backup: restarting",
        "migrate: job exited (exit code 1)",
        f'{stand}/health: 503 {{"status": "degraded"}}',
    ]
    assert Stand.posted == [{"text": "Cedar: " + "; ".join(lines)}]
