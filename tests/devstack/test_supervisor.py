from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from devstack.stack import REPO_ROOT
from tests.devstack.helpers import gone


def _start(log_dir: Path, first_child_seconds: float) -> tuple[subprocess.Popen[str], list[int]]:
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "tests.devstack.supervised_children", str(log_dir), str(first_child_seconds)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert supervisor.stdout is not None
    pids = [int(supervisor.stdout.readline()), int(supervisor.stdout.readline())]
    assert supervisor.stdout.readline().strip() == "ready"
    return supervisor, pids


def test_sigint_stops_every_child_and_exits_0(tmp_path: Path) -> None:
    supervisor, pids = _start(tmp_path, 600)
    supervisor.send_signal(signal.SIGINT)
    _out, err = supervisor.communicate(timeout=20)
    assert supervisor.returncode == 0, err
    assert all(gone(pid) for pid in pids)
    assert list(tmp_path.glob("*.pid")) == []


def test_sigterm_does_the_same(tmp_path: Path) -> None:
    supervisor, pids = _start(tmp_path, 600)
    supervisor.send_signal(signal.SIGTERM)
    supervisor.communicate(timeout=20)
    assert supervisor.returncode == 0
    assert all(gone(pid) for pid in pids)


def test_a_child_that_dies_stops_the_others_and_fails_the_run(tmp_path: Path) -> None:
    supervisor, pids = _start(tmp_path, 0.3)
    _out, err = supervisor.communicate(timeout=20)
    assert supervisor.returncode == 1
    assert "first exited unexpectedly (code 0)" in err
    assert str(tmp_path / "first.log") in err
    assert all(gone(pid) for pid in pids)
