"""A worker process takes a lower CPU priority as it starts, threads included, so that on a host it shares with
the API, requests win the CPU over background work."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT

PROBE = """
import os, threading
from core.settings import Settings
from workers.main import lower_priority
lower_priority(Settings())
seen = []
thread = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id())))
thread.start(); thread.join()
print(os.getpriority(os.PRIO_PROCESS, 0), seen[0])
"""


@pytest.mark.parametrize(("setting", "raised_by"), [(None, 10), ("3", 3), ("0", 0)])
def test_a_worker_process_and_its_later_threads_take_the_configured_niceness(
    setting: str | None, raised_by: int
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CEDAR_WORKER_NICE"}
    if setting is not None:
        env["CEDAR_WORKER_NICE"] = setting
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    expected = min(os.getpriority(os.PRIO_PROCESS, 0) + raised_by, 19)
    assert result.stdout.split() == [str(expected), str(expected)]
