"""`python -m devstack run` as `./cedar run` runs it: refusal on a taken port, and the whole stack up and down."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx

from bench.enrollment import application
from devstack.ports import free_port
from devstack.stack import REPO_ROOT
from tests.devstack.helpers import gone
from tests.waiting import eventually_sync

PORT_SETTINGS = [
    "CEDAR_API_PORT",
    "CEDAR_POSTGRES_PORT",
    "CEDAR_TEMPORAL_PORT",
    "CEDAR_TEMPORAL_UI_PORT",
    "CEDAR_STRIPE_PORT",
    "CEDAR_SMTP_PORT",
    "CEDAR_MAIL_HTTP_PORT",
]


def _env(data_dir: Path, **overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CEDAR_") and k != "DATABASE_URL"}
    env.update({name: str(free_port()) for name in PORT_SETTINGS})
    env.update(CEDAR_DATA_DIR=str(data_dir), **overrides)
    return env


def test_a_taken_port_stops_the_run_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        taken = str(listener.getsockname()[1])
        result = subprocess.run(
            [sys.executable, "-m", "devstack", "run"],
            cwd=REPO_ROOT,
            env=_env(tmp_path, CEDAR_TEMPORAL_UI_PORT=taken),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port {taken} (Temporal UI, CEDAR_TEMPORAL_UI_PORT) is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "postgres").exists()


def _start_run(env: dict[str, str]) -> tuple[subprocess.Popen[str], list[str]]:
    run = subprocess.Popen(
        [sys.executable, "-m", "devstack", "run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert run.stdout is not None
    output: list[str] = []
    for line in run.stdout:
        output.append(line)
        if "Cedar is up" in line:
            break
    return run, output


def test_the_whole_stack_starts_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = _env(tmp_path)
    run, output = _start_run(env)
    try:
        assert any("Cedar is up" in line for line in output), "".join(output)
        api = f"http://127.0.0.1:{env['CEDAR_API_PORT']}"
        assert httpx.get(f"{api}/health", timeout=10).status_code == 200
        mail = f"http://127.0.0.1:{env['CEDAR_MAIL_HTTP_PORT']}"
        assert httpx.get(f"{mail}/api/messages", timeout=10).status_code == 200
        pids = [json.loads(p.read_text())["pid"] for p in (tmp_path / "logs").glob("*.pid")]
        assert len(pids) == 6  # postgres, temporal, localstripe, smtp-sink, api, worker
        # The schedules were created once, by the deploy command, before the worker started.
        assert "-dunning-sweep" in (tmp_path / "logs" / "schedules.log").read_text()
    finally:
        # No pause first: the stop handler is in place before the first child starts (a start-up step unwinds too).
        run.send_signal(signal.SIGINT)
        rest, _ = run.communicate(timeout=60)
    assert run.returncode == 0, "".join(output) + rest
    assert all(gone(pid) for pid in pids)
    assert list((tmp_path / "logs").glob("*.pid")) == []


def _pid(data_dir: Path, name: str) -> int:
    return int(json.loads((data_dir / "logs" / f"{name}.pid").read_text())["pid"])


def _children(pid: int) -> list[int]:
    return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _api_processes(launcher: int) -> list[int]:
    """The uvicorn processes api.serve spawned (not multiprocessing's resource tracker)."""
    return [p for p in _children(launcher) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]


def _enroll(api: str, number: int) -> str:
    """POST an enrollment as a client would: on a lost connection or a 5xx, again with the same key."""
    key, body = str(uuid.uuid4()), application(number)

    def post() -> httpx.Response | None:
        try:
            response = httpx.post(f"{api}/api/v1/enrollments", json=body, headers={"Idempotency-Key": key}, timeout=10)
        except httpx.TransportError:
            return None
        return response if response.status_code == 202 else None

    accepted = eventually_sync(post, timeout=60, interval=0.2, what=f"enrollment {number} accepted")
    return str(accepted.json()["enrollment_id"])


def _demo_scheduled(api: str, enrollment_id: str) -> None:
    def state() -> str | None:
        try:
            return str(httpx.get(f"{api}/api/v1/enrollments/{enrollment_id}", timeout=10).json()["state"])
        except (httpx.TransportError, ValueError, KeyError):
            return None

    eventually_sync(state, until=lambda s: s == "demo_scheduled", timeout=90, what=f"{enrollment_id} demo_scheduled")


def _health(api: str) -> dict[str, Any] | None:
    try:
        response = httpx.get(f"{api}/health", timeout=10)
    except httpx.TransportError:
        return None
    body: dict[str, Any] = response.json()
    return body if response.status_code == 200 else None


def test_killed_worker_and_api_processes_are_restarted_and_work_continues(tmp_path: Path) -> None:
    env = _env(tmp_path, CEDAR_ENROLLMENT_RATE_LIMIT_PER_HOUR_IP="1000", CEDAR_LOG_LEVEL="WARNING")
    run, output = _start_run(env)
    api = f"http://127.0.0.1:{env['CEDAR_API_PORT']}"
    try:
        assert any("Cedar is up" in line for line in output), "".join(output)
        _demo_scheduled(api, _enroll(api, 1))

        in_flight = _enroll(api, 2)
        os.kill(_pid(tmp_path, "worker"), signal.SIGKILL)
        after_worker = _enroll(api, 3)
        _demo_scheduled(api, in_flight)
        _demo_scheduled(api, after_worker)

        during_api = _enroll(api, 4)
        (api_process,) = _api_processes(_pid(tmp_path, "api"))
        os.kill(api_process, signal.SIGKILL)
        after_api = _enroll(api, 5)
        _demo_scheduled(api, during_api)
        _demo_scheduled(api, after_api)

        health = eventually_sync(lambda: _health(api), what="/health up with the restarts")
        processes = health["processes"]
        assert processes["worker"]["restarts"] == 1
        assert processes["worker"]["last_exit"]["code"] == -signal.SIGKILL
        assert processes["api"]["restarts"] == 1
        assert processes["api"]["state"] == "running"
        assert processes["postgres"]["restarts"] == 0
        pids = [_pid(tmp_path, name) for name in processes]
        pids += _children(_pid(tmp_path, "api"))
    finally:
        run.kill()  # the supervisor dies outright: no orderly stop of anything
        rest, _ = run.communicate(timeout=60)
    log = "".join(output) + rest
    assert "worker exited (code -9); restarting in 0.5 s (restart 1)" in log, log
    assert re.search(r"api exited \(code -?\d+\); restarting in 0.5 s \(restart 1\)", log), log
    assert all(gone(pid, timeout=30) for pid in pids), log
