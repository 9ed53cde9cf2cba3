"""One child process of the local stack: its own process group, output in a log file, a clean stop.

Children die with their owner however it dies (SIGKILL, a test run cut short by a timeout): they start
through util-linux's `setpriv --pdeathsig`, so the kernel sends them their stop signal when the owner's main
thread ends. Each child also leaves `<log_dir>/<name>.pid` naming itself and its owner, the fallback where
setpriv is missing or a child was started from another thread: the next start with that log dir finds a
dead owner and stops the orphan, which would otherwise hold its port.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shlex
import shutil
import signal
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Self


class ProcessExitedError(RuntimeError):
    """The child exited while we waited for it to become ready."""


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3.. of /proc/<pid>/stat (state first), or None when the process is gone or /proc is absent."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def process_start_time(pid: int) -> str | None:
    """When `pid` started (clock ticks since boot): with the pid, it names a process even after pid reuse."""
    fields = _proc_stat(pid)
    if fields is None or fields[0] == "Z":
        return None
    return fields[19]


def _alive(pid: int, start_time: str | None) -> bool:
    return start_time is not None and process_start_time(pid) == start_time


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def reap_orphan(pid_path: Path, timeout: float = 10.0) -> None:
    """Stop the process recorded in `pid_path` if the process that started it is dead; drop stale files."""
    try:
        record: dict[str, Any] = json.loads(pid_path.read_text())
        pid, owner = int(record["pid"]), int(record["owner"])
    except (OSError, ValueError, KeyError, TypeError):
        pid_path.unlink(missing_ok=True)
        return
    if _alive(owner, record.get("owner_start")):
        return  # a live run (maybe this very process) still owns it
    if _alive(pid, record.get("start")):
        _signal_group(pid, int(record.get("signal", signal.SIGTERM)))
        deadline = time.monotonic() + timeout
        while _alive(pid, record.get("start")) and time.monotonic() < deadline:
            time.sleep(0.05)
        _signal_group(pid, signal.SIGKILL)
    pid_path.unlink(missing_ok=True)


def reap_orphans(log_dir: Path) -> None:
    """reap_orphan for every pid file in log_dir: run before checking ports, which orphans would hold."""
    for pid_path in sorted(log_dir.glob("*.pid")):
        reap_orphan(pid_path)


class ManagedProcess:
    """A child in its own process group (so a terminal's Ctrl-C reaches only the supervisor, which stops
    children in order), with stdout and stderr appended to `<log_dir>/<name>.log`.

    `env` entries are added to (not substituted for) this process's environment. `user` runs the child as
    that system user (PostgreSQL refuses to run as root). `stop_signal` is what stop() sends first.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str | os.PathLike[str]],
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.args = [os.fspath(arg) for arg in args]
        self.log_dir = Path(log_dir)
        self.env = dict(env or {})
        self.cwd = cwd
        self.user = user
        self.stop_signal = stop_signal
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.log_dir / f"{self.name}.pid"

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def is_running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        return log_tail(self.log_path, lines)

    def _command(self) -> list[str]:
        setpriv = shutil.which("setpriv")
        # The kernel's "parent" is the thread that forked: from any other thread than the main one, the child
        # would be signalled as soon as that thread ends, so only the main thread gets the guard.
        if setpriv is None or threading.current_thread() is not threading.main_thread():
            return self.args
        # An owner killed before setpriv armed the signal would never send it (prctl(2)): the shell between
        # them runs once the signal is armed, and starts the program only if its parent is still the owner.
        owner_check = '[ "$PPID" = "$0" ] || { echo "owner $0 died while starting" >&2; exit 1; }; exec "$@"'
        return [
            setpriv,
            f"--pdeathsig={signal.Signals(self.stop_signal).name}",
            "--",
            "/bin/sh",
            "-c",
            owner_check,
            str(os.getpid()),
            *self.args,
        ]

    def start(self) -> None:
        if self.is_running():
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self.log_dir.mkdir(parents=True, exist_ok=True)
        reap_orphan(self.pid_path)
        identity: dict[str, Any] = {}
        if self.user is not None:
            account = pwd.getpwnam(self.user)
            identity = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- {datetime.now().isoformat(timespec='seconds')} {shlex.join(self.args)}\n".encode())
            log.flush()
            self._popen = subprocess.Popen(
                self._command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **self.env},
                cwd=self.cwd,
                start_new_session=True,
                **identity,
            )
        record = {
            "pid": self._popen.pid,
            "start": process_start_time(self._popen.pid),
            "owner": os.getpid(),
            "owner_start": process_start_time(os.getpid()),
            "signal": int(self.stop_signal),
            "args": self.args,
        }
        self.pid_path.write_text(json.dumps(record))

    def wait_ready(self, check: Callable[[], bool], timeout: float = 60.0, interval: float = 0.1) -> None:
        """Poll `check` until it returns True; an exception from it counts as "not yet"."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running():
                raise ProcessExitedError(
                    f"{self.name} exited with code {self.returncode} before it was ready; "
                    f"log: {self.log_path}\n{self.log_tail()}"
                )
            try:
                ready = check()
            except Exception:  # a failing probe only means "not ready yet"
                ready = False
            if ready:
                return
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"{self.name} was not ready after {timeout:.0f}s; log: {self.log_path}\n{self.log_tail()}"
                )
            time.sleep(interval)

    def stop(self, timeout: float = 10.0) -> int | None:
        """Send stop_signal to the group, SIGKILL it after `timeout`; returns the exit code (None if never
        started)."""
        popen = self._popen
        if popen is None:
            return None
        if popen.poll() is None:
            _signal_group(popen.pid, self.stop_signal)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(popen.pid, signal.SIGKILL)
                popen.wait()
        # Grandchildren the leader left behind in its group (e.g. a reloader's workers) go too.
        _signal_group(popen.pid, signal.SIGKILL)
        self.pid_path.unlink(missing_ok=True)
        return popen.returncode


class Service(ABC):
    """A component of the local stack that runs as one ``ManagedProcess``: started, stopped, used in ``with``."""

    process: ManagedProcess
    stop_timeout: float = 10.0

    @abstractmethod
    def start(self, timeout: float = 60.0) -> None:
        """Start the process and return once it serves."""

    def stop(self, timeout: float | None = None) -> None:
        self.process.stop(self.stop_timeout if timeout is None else timeout)

    def is_running(self) -> bool:
        return self.process.is_running()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
