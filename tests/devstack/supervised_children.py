"""Supervises two sleeping children the way `./cedar run` does; used by test_supervisor in a subprocess.

Usage: python -m tests.devstack.supervised_children LOG_DIR FIRST_CHILD_SECONDS. Prints each child's PID,
then "ready"; exits like `./cedar run`: 0 after SIGINT/SIGTERM, 1 when a child dies on its own.
"""

from __future__ import annotations

import sys
from pathlib import Path

from devstack.processes import ManagedProcess
from devstack.supervisor import ShutdownRequested, Supervisor


def main(log_dir: Path, first_child_seconds: float) -> int:
    supervisor = Supervisor(poll_interval=0.05)
    supervisor.install_signal_handlers()
    try:
        for name, seconds in (("first", first_child_seconds), ("second", 600.0)):
            code = f"import time; time.sleep({seconds})"
            child = supervisor.start(ManagedProcess(name, [sys.executable, "-c", code], log_dir))
            print(child.pid, flush=True)
        print("ready", flush=True)
        return supervisor.run()
    except ShutdownRequested:
        return 0
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), float(sys.argv[2])))
