"""``python -m api.serve [--host H] [--port P] [--processes N] [--no-access-log]``: the API in N processes, one port.

``uvicorn --workers N`` shares one listening socket among its processes, and whichever process wakes first
accepts: a burst of new connections can land mostly on one of them. Keep-alive connections stay where they
landed, so one process serves most clients and the requests on the busy one wait. Here each process binds a
socket of its own with ``SO_REUSEPORT``, and the kernel spreads connections across them by address hash.

Each process is the whole API, with its own in-process Temporal worker (``Settings.api_worker``). A container
runs one process (``deploy/Dockerfile``) and its load balancer spreads the load; this is for one host with more
cores than one Python process can use (``CEDAR_API_PROCESSES`` for ``./cedar run``).
"""

from __future__ import annotations

import argparse
import ctypes
import multiprocessing
import signal
import socket
import sys
import threading
from multiprocessing.connection import wait
from multiprocessing.context import SpawnProcess
from types import FrameType

import uvicorn

from core.settings import Settings

PR_SET_PDEATHSIG = 1
GRACE_SECONDS = 1.0  # for a signal sent to the whole group (Ctrl-C, the devstack) to reach the children itself


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket of this process's own on the port every API process listens on."""
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    return sock


def serve_one(host: str, port: int, log_level: str, access_log: bool) -> None:
    """One API process. It dies with the launcher, even when the launcher is killed outright."""
    if sys.platform == "linux":
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    config = uvicorn.Config(
        "api.main:serve", factory=True, host=host, port=port, log_level=log_level.lower(), access_log=access_log
    )
    uvicorn.Server(config).run(sockets=[listening_socket(host, port)])


def port_is_free(host: str, port: int) -> bool:
    """Without ``SO_REUSEPORT`` the probe cannot share the port, so any listener there (ours too) is seen."""
    with socket.socket(_family(host), socket.SOCK_STREAM) as probe:
        # Connections of a killed predecessor in TIME_WAIT are no conflict (the servers set it too); a listener is.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def supervise(children: list[SpawnProcess]) -> int:
    """Waits until every child has exited; a stop signal or one child's exit stops the rest. The exit code is
    0 after a requested stop, else the first child's failure."""
    stop_requested = threading.Event()

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        stop_requested.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    failed: int | None = None
    stopping = False
    while any(child.is_alive() for child in children):
        wait([child.sentinel for child in children if child.is_alive()], timeout=0.2)
        exited = [child for child in children if not child.is_alive()]
        if not stopping and (stop_requested.is_set() or exited):
            stopping = True
            if not stop_requested.is_set():
                code = exited[0].exitcode or 0
                failed = code if code > 0 else 1  # a child killed by a signal has a negative code
                print(f"api.serve: {exited[0].name} exited with code {exited[0].exitcode}; stopping", file=sys.stderr)
            for child in children:
                child.join(GRACE_SECONDS if stop_requested.is_set() else 0)
                if child.is_alive():
                    child.terminate()  # uvicorn finishes the requests in flight, then exits
    return 0 if failed is None else failed


def main(argv: list[str] | None = None) -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.api_port)
    parser.add_argument("--processes", type=int, default=settings.api_processes)
    parser.add_argument("--log-level", default=settings.log_level)
    parser.add_argument("--no-access-log", dest="access_log", action="store_false")
    args = parser.parse_args(argv)
    if args.processes < 1:
        parser.error("--processes must be at least 1")
    if not port_is_free(args.host, args.port):
        sys.exit(f"api.serve: {args.host}:{args.port} is in use; choose another --port (CEDAR_API_PORT)")
    spawn = multiprocessing.get_context("spawn")
    children = [
        spawn.Process(
            target=serve_one, args=(args.host, args.port, args.log_level, args.access_log), name=f"api-{number}"
        )
        for number in range(1, args.processes + 1)
    ]
    for child in children:
        child.start()
    sys.exit(supervise(children))


if __name__ == "__main__":
    main()
