"""Supervises two children the way `./cedar run` does; used by test_supervisor in a subprocess.

Usage: python -m tests.devstack.supervised_children RUN_DIR FIRST_CHILD_SECONDS [FIRST_CHILD_LINE]. The first
child prints FIRST_CHILD_LINE (if given), sleeps FIRST_CHILD_SECONDS and exits 0; the second sleeps. Prints each
child's PID, then "ready"; exits like `./cedar run`: 0 after SIGINT/SIGTERM, 1 when a child cannot be kept up.
Restarts are quick here: 0.05 s doubling to 0.2 s; three exits within 2 s of their starts stop the run.
"""

from __future__ import annotations

import sys
from pathlib import Path

from devstack.processes import ManagedProcess
from devstack.supervisor import RestartPolicy, ShutdownRequested, Supervisor

POLICY = RestartPolicy(initial_delay=0.05, max_delay=0.2, reset_after=60, quick_exit=2, max_quick_exits=3)


def main(run_dir: Path, first_child_seconds: float, first_child_line: str) -> int:
    supervisor = Supervisor(poll_interval=0.05, policy=POLICY, run_dir=run_dir)
    supervisor.install_signal_handlers()
    try:
        for name, seconds in (("first", first_child_seconds), ("second", 600.0)):
            line = first_child_line if name == "first" else ""
            code = f"import time; print({line!r}, flush=True); time.sleep({seconds})"
            child = supervisor.start(ManagedProcess(name, [sys.executable, "-c", code], run_dir / "logs"))
            print(child.pid, flush=True)
        print("ready", flush=True)
        return supervisor.run()
    except ShutdownRequested:
        return 0
    finally:
        supervisor.stop_all()


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else ""))
