"""Helpers shared by the devstack tests."""

from __future__ import annotations

from devstack.processes import process_start_time
from tests.waiting import NeverHappened, eventually_sync


def gone(pid: int, timeout: float = 5.0) -> bool:
    """True once `pid` has exited (a zombie nobody reaped yet counts as exited); False if it still runs after
    `timeout` seconds."""
    try:
        eventually_sync(
            lambda: process_start_time(pid) is None, timeout=timeout, what=f"process {pid} gone", interval=0.02
        )
    except NeverHappened:
        return False
    return True
