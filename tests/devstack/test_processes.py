from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devstack.processes import ManagedProcess, ProcessExitedError, reap_orphans
from tests.devstack.helpers import gone

SLEEP = [sys.executable, "-c", "import time; time.sleep(600)"]


def _printed(process: ManagedProcess, line: str) -> bool:
    # The last line, not any: the log's header line quotes the command, which contains `line` too.
    return process.log_path.read_text().splitlines()[-1] == line


def test_output_goes_to_the_log_and_stop_reports_the_exit(tmp_path: Path) -> None:
    process = ManagedProcess(
        "echo", [sys.executable, "-c", "import time; print('hello', flush=True); time.sleep(600)"], tmp_path
    )
    process.start()
    process.wait_ready(lambda: _printed(process, "hello"), timeout=10)
    assert process.is_running()
    assert process.stop() is not None
    assert not process.is_running()
    assert not process.pid_path.exists()


def test_wait_ready_fails_fast_when_the_child_exits(tmp_path: Path) -> None:
    process = ManagedProcess("broken", [sys.executable, "-c", "raise SystemExit('bad config')"], tmp_path)
    process.start()
    with pytest.raises(ProcessExitedError, match="bad config"):
        process.wait_ready(lambda: False, timeout=10)


def test_a_child_ignoring_sigterm_is_killed(tmp_path: Path) -> None:
    code = (
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(600)"
    )
    process = ManagedProcess("stubborn", [sys.executable, "-c", code], tmp_path)
    process.start()
    process.wait_ready(lambda: _printed(process, "up"), timeout=10)
    assert process.stop(timeout=0.5) == -signal.SIGKILL


def _killed_owner(log_dir: Path, from_main_thread: bool) -> int:
    """Start a sleeper from a Python process, SIGKILL that owner (no clean-up at all); the sleeper's PID."""
    owner_code = textwrap.dedent(
        f"""
        import threading, time
        from pathlib import Path
        from devstack.processes import ManagedProcess
        child = ManagedProcess("sleeper", {SLEEP!r}, Path({str(log_dir)!r}))
        if {from_main_thread!r}:
            child.start()
        else:
            thread = threading.Thread(target=child.start)
            thread.start()
            thread.join()
        print(child.pid, flush=True)
        time.sleep(600)
        """
    )
    owner = subprocess.Popen([sys.executable, "-c", owner_code], stdout=subprocess.PIPE, text=True)
    assert owner.stdout is not None
    child = int(owner.stdout.readline())
    owner.kill()
    owner.wait()
    return child


def test_children_die_with_a_killed_owner(tmp_path: Path) -> None:
    assert gone(_killed_owner(tmp_path, from_main_thread=True))


def test_a_child_whose_owner_died_before_the_guard_was_armed_never_starts(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    process = ManagedProcess("marker", [sys.executable, "-c", f"open({str(marker)!r}, 'w')"], tmp_path)
    command = process._command()  # names this process as the owner

    # Started by another process, the child sees what it sees when its owner died first: a parent that is not
    # the owner.
    adopted = subprocess.run(
        [sys.executable, "-c", f"import subprocess; raise SystemExit(subprocess.call({command!r}))"],
        capture_output=True,
        text=True,
    )
    assert adopted.returncode == 1
    assert f"owner {os.getpid()} died while starting" in adopted.stderr
    assert not marker.exists()

    assert subprocess.call(command) == 0  # its real owner starts it
    assert marker.exists()


def test_orphans_of_a_killed_owner_are_reaped_before_the_next_start(tmp_path: Path) -> None:
    orphan = _killed_owner(tmp_path, from_main_thread=False)  # no parent-death signal from other threads
    assert not gone(orphan, timeout=0.3)

    reap_orphans(tmp_path)
    assert gone(orphan)


def test_a_live_owner_keeps_its_children(tmp_path: Path) -> None:
    process = ManagedProcess("sleeper", SLEEP, tmp_path)
    process.start()
    try:
        reap_orphans(tmp_path)  # the owner is this very process: nothing to reap
        assert process.is_running()
        assert process.pid is not None
        os.kill(process.pid, 0)
    finally:
        process.stop()
