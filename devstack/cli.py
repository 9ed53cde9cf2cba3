"""`python -m devstack run`: the whole system with demo data, supervised until Ctrl-C; `create-admin` too."""

from __future__ import annotations

import argparse
import sys
import time

from pydantic import ValidationError

from core.settings import Settings
from devstack.ports import PortInUseError
from devstack.postgres import PostgresError
from devstack.processes import ProcessExitedError, reap_orphans
from devstack.stack import StartupError, banner, check_ports, plan, start
from devstack.supervisor import RestartPolicy, ShutdownRequested, Supervisor

# Failures we explain in one message; anything else is a bug and keeps its traceback.
EXPECTED_FAILURES = (StartupError, ProcessExitedError, PostgresError, TimeoutError, FileNotFoundError)


def run(workers: int | None = None) -> int:
    started = time.monotonic()
    try:
        # --workers overrides CEDAR_WORKER_PROCESSES.
        settings = Settings() if workers is None else Settings(worker_processes=workers)
    except ValidationError as error:
        print(f"cedar run: invalid settings (CEDAR_* variables or .env):\n{error}", file=sys.stderr)
        return 2
    stack = plan(settings)
    # Children of a run that was killed outright still hold their ports: stop them before checking.
    reap_orphans(stack.log_dir)
    try:
        check_ports(stack)
    except PortInUseError as error:
        print(f"cedar run: {error}", file=sys.stderr)
        return 2
    supervisor = Supervisor(policy=RestartPolicy.from_settings(settings), run_dir=stack.run_dir)
    supervisor.install_signal_handlers()
    print(f"Starting Cedar (data in {stack.data_dir}):", flush=True)
    try:
        start(stack, supervisor)
        print(banner(stack, time.monotonic() - started), flush=True)
        return supervisor.run()
    except ShutdownRequested:
        print("\nstopping...", file=sys.stderr, flush=True)
        return 0
    except EXPECTED_FAILURES as error:
        print(f"\ncedar run: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        supervisor.stop_all()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description="Cedar's local stack.")
    commands = parser.add_subparsers(dest="command", required=True)
    run_parser = commands.add_parser("run", help="start PostgreSQL, Temporal, localstripe, mail, the API and a worker")
    run_parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: CEDAR_WORKER_PROCESSES, else 1)"
    )
    commands.add_parser(
        "create-admin", add_help=False, help="create an admin and print a set-password link (scripts.create_admin)"
    )
    args, rest = parser.parse_known_args(argv)
    if args.command == "create-admin":
        from scripts.create_admin import main as create_admin

        return create_admin(rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "run":
        if args.workers is not None and args.workers < 1:
            parser.error("--workers must be at least 1")
        return run(args.workers)
    parser.error(f"unknown command {args.command}")
    return 2
