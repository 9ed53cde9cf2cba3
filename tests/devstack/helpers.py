"""Helpers shared by the devstack tests."""

from __future__ import annotations

import time

from devstack.processes import process_start_time


def gone(pid: int, timeout: float = 5.0) -> bool:
    """True once `pid` has exited (a zombie nobody reaped yet counts as exited)."""
    deadline = time.monotonic() + timeout
    while process_start_time(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True
