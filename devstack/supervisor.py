"""Keeps the stack's children up: a child that dies is restarted with backoff; Ctrl-C stops all in reverse order.

A run stops instead of restarting when a restart cannot help: the child's log since its last start names a
cause no restart fixes (a port taken, a corrupt data directory), or it keeps dying within moments of each start.
What happened to each child is kept in ``<run_dir>/supervisor.json`` (the API's ``/health`` shows it in
development). A file ``<run_dir>/hold/<name>`` holds that child down: the supervisor stops it, and starts it
again once the file is gone (an outage on purpose, e.g. for the fault suite).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from devstack.processes import ManagedProcess, log_tail

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
STATUS_FILE = "supervisor.json"
HOLD_DIR = "hold"

# Lines (lower-cased) in a child's log that no restart can cure: the run stops and says so.
FATAL_CAUSES = {
    "address already in use": "its port is taken by another program",
    "is already in use": "its port is taken by another program",
    "is in use;": "its port is taken by another program",
    "could not create any tcp/ip sockets": "its port is taken by another program",
    "database disk image is malformed": "its data file is corrupt",
    "file is not a database": "its data file is corrupt",
    "could not locate a valid checkpoint record": "its data directory is corrupt",
    "invalid checkpoint record": "its data directory is corrupt",
    "database files are incompatible": "its data directory belongs to another PostgreSQL version",
    "is not a database cluster directory": "its data directory is corrupt",
    "is not a valid data directory": "its data directory is corrupt",
}


class ShutdownRequested(BaseException):
    """Raised from a signal handler so that any wait in progress (a start-up step too) unwinds at once.

    A BaseException, like KeyboardInterrupt, so that `except Exception` in library code does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


@dataclass(frozen=True)
class RestartPolicy:
    """Seconds; see the restart_* settings (`RestartPolicy.from_settings`)."""

    initial_delay: float = 0.5
    max_delay: float = 10.0
    reset_after: float = 60.0
    quick_exit: float = 10.0
    max_quick_exits: int = 8

    @classmethod
    def from_settings(cls, settings: Any) -> RestartPolicy:
        return cls(
            initial_delay=settings.restart_backoff_initial.total_seconds(),
            max_delay=settings.restart_backoff_max.total_seconds(),
            reset_after=settings.restart_backoff_reset_after.total_seconds(),
            quick_exit=settings.restart_quick_exit.total_seconds(),
            max_quick_exits=settings.restart_max_quick_exits,
        )


@dataclass
class Child:
    """A supervised process and what happened to it."""

    process: ManagedProcess
    restart: Callable[[], None]
    delay: float
    restarts: int = 0
    quick_exits: int = 0
    started_at: float = field(default_factory=time.monotonic)
    last_exit: dict[str, Any] | None = None
    restart_at: float | None = None
    held: bool = False

    @property
    def name(self) -> str:
        return self.process.name

    def status(self) -> dict[str, Any]:
        return {
            "pid": self.process.pid if self.process.is_running() else None,
            "state": "held" if self.held else "running" if self.process.is_running() else "restarting",
            "restarts": self.restarts,
            "last_exit": self.last_exit,
        }


class StopRun(RuntimeError):
    """A child cannot be kept up; the message says which and why."""


def _last_start_output(path: Path, limit: int = 200_000) -> str:
    """The log's output since the child's last start (ManagedProcess writes a `--- ` header line at each)."""
    try:
        with open(path, "rb") as log:
            log.seek(max(0, log.seek(0, os.SEEK_END) - limit))
            text = log.read().decode(errors="replace")
    except OSError:
        return ""
    return text[text.rfind("\n--- ") + 1 :]


def fatal_cause(log_text: str) -> str | None:
    """Why a restart cannot help, read from a child's log since its last start; None when it may."""
    lowered = log_text.lower()
    return next((cause for needle, cause in FATAL_CAUSES.items() if needle in lowered), None)


def _wait_group_gone(pgid: int, timeout: float = 5.0) -> None:
    """Until no process of the group is left (a restarted child binds the ports they held)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.02)


def hold(run_dir: Path, name: str) -> None:
    """Ask the supervisor of `run_dir` to stop `name` and keep it down until `release`."""
    (run_dir / HOLD_DIR).mkdir(parents=True, exist_ok=True)
    (run_dir / HOLD_DIR / name).touch()


def release(run_dir: Path, name: str) -> None:
    (run_dir / HOLD_DIR / name).unlink(missing_ok=True)


def read_status(run_dir: Path) -> dict[str, Any] | None:
    """The supervisor's last written status, or None when there is none (or it is being replaced)."""
    try:
        status: dict[str, Any] = json.loads((run_dir / STATUS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return status


class Supervisor:
    """Children registered in start order; `run` blocks until a stop signal (exit code 0) or until a child
    cannot be kept up (its name, the reason and its log are printed, exit code 1). The caller then calls
    stop_all().

    Without a `policy` nothing is restarted: the first child to exit stops the run (start-up helpers and
    benchmarks that only need stop_all)."""

    def __init__(
        self,
        out: TextIO = sys.stderr,
        poll_interval: float = 0.5,
        policy: RestartPolicy | None = None,
        run_dir: Path | None = None,
    ) -> None:
        self.out = out
        self.poll_interval = poll_interval
        self.policy = policy
        self.run_dir = run_dir
        self.children: list[Child] = []

    @property
    def processes(self) -> list[ManagedProcess]:
        return [child.process for child in self.children]

    def add(self, process: ManagedProcess, restart: Callable[[], None] | None = None) -> ManagedProcess:
        """Register an already started process (launchers start their own); `restart` starts it again
        (default: the process's own start)."""
        initial = self.policy.initial_delay if self.policy else 0.0
        child = Child(process, restart or process.start, delay=initial)
        self.children.append(child)
        self.write_status()
        return process

    def start(self, process: ManagedProcess, restart: Callable[[], None] | None = None) -> ManagedProcess:
        process.start()
        return self.add(process, restart)

    def install_signal_handlers(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Later signals are ignored: a second Ctrl-C must not cut the orderly stop short.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise ShutdownRequested(signum)

    def _say(self, message: str) -> None:
        print(message, file=self.out, flush=True)

    def run(self) -> int:
        """Watch the children; returns the exit code for this command."""
        try:
            while True:
                self.tick()
                time.sleep(self.poll_interval)
        except ShutdownRequested as request:
            self._say(f"\n{request} received: stopping everything...")
            return 0
        except StopRun as reason:
            self._say(f"\n{reason}\n\nStopping the rest...")
            return 1

    def tick(self, now: float | None = None) -> None:
        """One round: note exits, hold or release children, restart those due. Raises StopRun."""
        changed = False
        for child in self.children:
            changed |= self._check(child, time.monotonic() if now is None else now)
        if changed:
            self.write_status()

    def _held(self, child: Child) -> bool:
        return self.run_dir is not None and (self.run_dir / HOLD_DIR / child.name).exists()

    def _check(self, child: Child, now: float) -> bool:
        process = child.process
        if self._held(child):
            if child.held:
                return False
            child.held = True
            child.restart_at = None
            self._say(f"{child.name} held down on request; stopping it")
            process.stop()
            return True
        if child.held:
            child.held = False
            self._say(f"{child.name} released; starting it")
            self._restart(child, counted=False)
            return True
        if process.is_running():
            if now - child.started_at >= (self.policy.reset_after if self.policy else 0):
                child.delay = self.policy.initial_delay if self.policy else 0.0
                child.quick_exits = 0
            return False
        if child.restart_at is None:
            self._exited(child, now)
            return True
        if now >= child.restart_at:
            self._restart(child, counted=True)
            return True
        return False

    def _exited(self, child: Child, now: float) -> None:
        """A child just found dead: decide to restart it (when) or to stop the run."""
        process = child.process
        code = process.returncode
        child.last_exit = {"code": code, "at": datetime.now(UTC).isoformat(timespec="seconds")}
        tail = log_tail(process.log_path)
        if self.policy is None:
            raise StopRun(
                f"{child.name} exited unexpectedly (code {code}); its log is {process.log_path}. Last lines:\n{tail}"
            )
        cause = fatal_cause(_last_start_output(process.log_path))
        if cause is not None:
            raise StopRun(
                f"{child.name} exited (code {code}) and a restart cannot help: {cause}. "
                f"Its log is {process.log_path}. Last lines:\n{tail}"
            )
        if now - child.started_at < self.policy.quick_exit:
            child.quick_exits += 1
        else:
            child.quick_exits = 0
        if child.quick_exits >= self.policy.max_quick_exits:
            raise StopRun(
                f"{child.name} exited (code {code}) within {self.policy.quick_exit:g} s of each of its last "
                f"{child.quick_exits} starts; its log is {process.log_path}. Last lines:\n{tail}"
            )
        child.restart_at = now + child.delay
        self._say(f"{child.name} exited (code {code}); restarting in {child.delay:g} s (restart {child.restarts + 1})")
        child.delay = min(child.delay * 2, self.policy.max_delay)

    def _restart(self, child: Child, *, counted: bool) -> None:
        process = child.process
        pgid = process.pid
        process.stop()  # what the dead leader left in its group goes too
        if pgid is not None:
            _wait_group_gone(pgid)
        child.restart_at = None
        if counted:
            child.restarts += 1
        child.started_at = time.monotonic()
        try:
            child.restart()
        except Exception as error:  # a restart that fails at once counts as one more quick exit
            self._say(f"{child.name} failed to restart: {error}")
        child.started_at = time.monotonic()

    def write_status(self) -> None:
        if self.run_dir is None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        status = {
            "supervisor_pid": os.getpid(),
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "children": {child.name: child.status() for child in self.children},
        }
        partial = self.run_dir / f"{STATUS_FILE}.tmp"
        partial.write_text(json.dumps(status, indent=2))
        os.replace(partial, self.run_dir / STATUS_FILE)

    def stop_all(self) -> None:
        # Signals arriving now are ignored rather than interrupting a child's shutdown halfway.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        for process in reversed(self.processes):
            if process.pid is not None:
                process.stop()
        if self.run_dir is not None:
            with contextlib.suppress(OSError):
                (self.run_dir / STATUS_FILE).unlink()
