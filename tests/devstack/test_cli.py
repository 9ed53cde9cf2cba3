"""`python -m devstack run` as `./cedar run` runs it: refusal on a taken port, and the whole stack up and down."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx

from devstack.ports import free_port
from devstack.stack import REPO_ROOT
from tests.devstack.helpers import gone

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


def test_the_whole_stack_starts_answers_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    env = _env(tmp_path)
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
    try:
        for line in run.stdout:
            output.append(line)
            if "Cedar is up" in line:
                break
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
