"""Keeps the stack's children together: stop all in reverse order on Ctrl-C, or when any one dies."""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType
from typing import TextIO

from devstack.processes import ManagedProcess

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ShutdownRequested(BaseException):
    """Raised from a signal handler so that any wait in progress (a start-up step too) unwinds at once.

    A BaseException, like KeyboardInterrupt, so that `except Exception` in library code does not swallow it.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Supervisor:
    """Children registered in start order; `run` blocks until a stop signal (exit code 0) or until a child
    exits on its own (its name and log are printed, exit code 1). The caller then calls stop_all()."""

    def __init__(self, out: TextIO = sys.stderr, poll_interval: float = 0.5) -> None:
        self.out = out
        self.poll_interval = poll_interval
        self.processes: list[ManagedProcess] = []

    def add(self, process: ManagedProcess) -> ManagedProcess:
        """Register an already started process (launchers start their own)."""
        self.processes.append(process)
        return process

    def start(self, process: ManagedProcess) -> ManagedProcess:
        self.add(process)
        process.start()
        return process

    def install_signal_handlers(self) -> None:
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Later signals are ignored: a second Ctrl-C must not cut the orderly stop short.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        raise ShutdownRequested(signum)

    def first_dead(self) -> ManagedProcess | None:
        return next((p for p in self.processes if not p.is_running()), None)

    def run(self) -> int:
        """Watch the children; returns the exit code for this command."""
        try:
            while True:
                dead = self.first_dead()
                if dead is not None:
                    self.report_death(dead)
                    return 1
                time.sleep(self.poll_interval)
        except ShutdownRequested as request:
            print(f"\n{request} received: stopping everything...", file=self.out, flush=True)
            return 0

    def report_death(self, process: ManagedProcess) -> None:
        print(
            f"\n{process.name} exited unexpectedly (code {process.returncode}); "
            f"its log is {process.log_path}. Last lines:\n{process.log_tail()}\n\nStopping the rest...",
            file=self.out,
            flush=True,
        )

    def stop_all(self) -> None:
        # Signals arriving now are ignored rather than interrupting a child's shutdown halfway.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        for process in reversed(self.processes):
            if process.pid is not None:
                process.stop()
