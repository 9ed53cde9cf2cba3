from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from devstack.stack import REPO_ROOT
from devstack.supervisor import fatal_cause, hold, read_status, release
from tests.devstack.helpers import gone
from tests.waiting import eventually_sync


def _start(run_dir: Path, first_child_seconds: float, line: str = "") -> tuple[subprocess.Popen[str], list[int]]:
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "tests.devstack.supervised_children", str(run_dir), str(first_child_seconds), line],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert supervisor.stdout is not None
    pids = [int(supervisor.stdout.readline()), int(supervisor.stdout.readline())]
    assert supervisor.stdout.readline().strip() == "ready"
    return supervisor, pids


def _child(run_dir: Path, name: str) -> dict[str, Any]:
    status = read_status(run_dir)
    return status["children"][name] if status else {}


def test_sigint_stops_every_child_and_exits_0(tmp_path: Path) -> None:
    supervisor, pids = _start(tmp_path, 600)
    supervisor.send_signal(signal.SIGINT)
    _out, err = supervisor.communicate(timeout=20)
    assert supervisor.returncode == 0, err
    assert all(gone(pid) for pid in pids)
    assert list((tmp_path / "logs").glob("*.pid")) == []
    assert read_status(tmp_path) is None


def test_sigterm_does_the_same(tmp_path: Path) -> None:
    supervisor, pids = _start(tmp_path, 600)
    supervisor.send_signal(signal.SIGTERM)
    supervisor.communicate(timeout=20)
    assert supervisor.returncode == 0
    assert all(gone(pid) for pid in pids)


def test_a_killed_child_is_restarted_logged_and_reported(tmp_path: Path) -> None:
    supervisor, (first, second) = _start(tmp_path, 600)
    try:
        os.kill(first, signal.SIGKILL)
        restarted = eventually_sync(
            lambda: _child(tmp_path, "first"),
            until=lambda child: child.get("restarts") == 1 and child.get("pid") not in (None, first),
            what="the first child restarted",
        )
        assert restarted["state"] == "running"
        assert restarted["last_exit"]["code"] == -signal.SIGKILL
        assert _child(tmp_path, "second")["pid"] == second
        assert _child(tmp_path, "second")["restarts"] == 0
    finally:
        supervisor.send_signal(signal.SIGINT)
        _out, err = supervisor.communicate(timeout=20)
    assert "first exited (code -9); restarting in 0.05 s (restart 1)" in err
    assert supervisor.returncode == 0, err
    assert all(gone(pid) for pid in (first, second, restarted["pid"]))


def test_a_child_failing_at_once_repeatedly_stops_the_run_with_the_reason(tmp_path: Path) -> None:
    supervisor, pids = _start(tmp_path, 0.1)
    _out, err = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 1
    assert "first exited (code 0); restarting in 0.05 s (restart 1)" in err
    assert "first exited (code 0); restarting in 0.1 s (restart 2)" in err
    assert "first exited (code 0) within 2 s of each of its last 3 starts" in err
    assert str(tmp_path / "logs" / "first.log") in err
    assert all(gone(pid) for pid in pids)


def test_a_cause_no_restart_can_fix_stops_the_run_at_once(tmp_path: Path) -> None:
    supervisor, pids = _start(tmp_path, 0.1, "OSError: [Errno 98] Address already in use")
    _out, err = supervisor.communicate(timeout=30)
    assert supervisor.returncode == 1
    assert "first exited (code 0) and a restart cannot help: its port is taken by another program" in err
    assert "restarting" not in err
    assert all(gone(pid) for pid in pids)


def test_a_held_child_stays_down_until_released(tmp_path: Path) -> None:
    supervisor, (first, second) = _start(tmp_path, 600)
    try:
        hold(tmp_path, "second")
        eventually_sync(lambda: _child(tmp_path, "second"), until=lambda c: c.get("state") == "held", what="held")
        assert gone(second)
        release(tmp_path, "second")
        back = eventually_sync(
            lambda: _child(tmp_path, "second"), until=lambda c: c.get("state") == "running", what="running again"
        )
        assert back["pid"] != second
        assert back["restarts"] == 0  # an outage on purpose is no failure
    finally:
        supervisor.send_signal(signal.SIGINT)
        _out, err = supervisor.communicate(timeout=20)
    assert "second held down on request" in err
    assert all(gone(pid) for pid in (first, back["pid"]))


def test_killing_the_supervisor_leaves_no_child(tmp_path: Path) -> None:
    supervisor, (first, second) = _start(tmp_path, 600)
    os.kill(first, signal.SIGKILL)
    restarted = eventually_sync(
        lambda: _child(tmp_path, "first"), until=lambda c: c.get("restarts") == 1 and c.get("pid"), what="restarted"
    )
    supervisor.kill()
    supervisor.communicate(timeout=20)
    assert all(gone(pid) for pid in (second, restarted["pid"]))


def test_fatal_causes_are_read_from_the_log() -> None:
    assert fatal_cause("LOG:  could not bind IPv4 address: Address already in use") is not None
    assert fatal_cause("api.serve: 127.0.0.1:8000 is in use; choose another --port") is not None
    assert fatal_cause("PANIC:  could not locate a valid checkpoint record") == "its data directory is corrupt"
    assert fatal_cause("sqlite: database disk image is malformed") == "its data file is corrupt"
    assert fatal_cause("ConnectionRefusedError: [Errno 111] Connect call failed") is None
