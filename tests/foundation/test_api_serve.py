"""``python -m api.serve``: N API processes on one port, each with a socket of its own, that live and die together.

The app needs no database or Temporal to answer ``/docs``, so these start the real launcher with nothing behind it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from api.serve import listening_socket
from devstack.ports import free_port
from tests.devstack.helpers import gone
from tests.waiting import eventually_sync

REPO_ROOT = Path(__file__).resolve().parents[2]


def start_launcher(port: int, processes: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "api.serve", "--port", str(port), "--processes", str(processes), "--no-access-log"],
        cwd=REPO_ROOT,
        env={**os.environ, "CEDAR_API_WORKER": "false", "CEDAR_LOG_LEVEL": "WARNING"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_serving(port: int, launcher: subprocess.Popen[str], timeout: float = 60) -> None:
    def serving() -> bool:
        assert launcher.poll() is None, launcher.communicate()[0]
        try:
            return httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    eventually_sync(serving, timeout=timeout, what=f"api.serve answering on {port}")


def api_processes_of(launcher_pid: int) -> list[int]:
    """The launcher's uvicorn children (not multiprocessing's resource tracker), from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_text()
            except OSError:
                continue
            if parent == launcher_pid and "spawn_main" in command:
                found.append(int(entry.name))
    return found


@pytest.fixture
def launcher() -> Iterator[tuple[int, subprocess.Popen[str]]]:
    port = free_port()
    process = start_launcher(port, processes=2)
    try:
        wait_serving(port, process)
        yield port, process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_the_kernel_spreads_connections_over_the_processes_sockets() -> None:
    port = free_port()
    first, second = listening_socket("127.0.0.1", port), listening_socket("127.0.0.1", port)
    clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(64)]
    try:
        accepted = []
        for server in (first, second):
            server.setblocking(False)
            count = 0
            while True:
                try:
                    connection, _ = server.accept()
                except BlockingIOError:
                    break
                connection.close()
                count += 1
            accepted.append(count)
        assert sum(accepted) == 64
        # Hashing 64 source ports over two sockets: each gets a share, never (as with one shared socket) all.
        assert min(accepted) >= 12, accepted
    finally:
        for sock in (*clients, first, second):
            sock.close()


def test_a_stop_signal_stops_every_process_and_exits_cleanly(launcher: tuple[int, subprocess.Popen[str]]) -> None:
    port, process = launcher
    api_processes = api_processes_of(process.pid)
    assert len(api_processes) == 2
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert all(gone(pid) for pid in api_processes)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)


def test_the_processes_die_with_a_killed_launcher(launcher: tuple[int, subprocess.Popen[str]]) -> None:
    _, process = launcher
    api_processes = api_processes_of(process.pid)
    assert len(api_processes) == 2
    process.kill()  # no chance to stop them: the kernel's parent-death signal does
    process.wait(timeout=10)
    assert all(gone(pid, timeout=30) for pid in api_processes)


def test_one_process_dying_stops_the_others_and_fails(launcher: tuple[int, subprocess.Popen[str]]) -> None:
    _, process = launcher
    crashed, survivor = api_processes_of(process.pid)
    os.kill(crashed, signal.SIGKILL)
    # A supervisor above (the devstack, systemd) sees the failure instead of a half-strength API.
    assert process.wait(timeout=30) == 1
    assert gone(survivor, timeout=30)


def test_a_taken_port_is_a_clear_message(launcher: tuple[int, subprocess.Popen[str]]) -> None:
    port, _ = launcher
    second = start_launcher(port, processes=1)
    output, _ = second.communicate(timeout=30)
    assert second.returncode == 1
    assert f"127.0.0.1:{port} is in use" in output
    assert "Traceback" not in output
