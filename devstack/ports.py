"""Port helpers: pick a free port for tests, and refuse early (with the setting to change) when one is taken."""

from __future__ import annotations

import socket
import time


class PortInUseError(RuntimeError):
    """A port the stack wants to bind is taken; the message names the setting that moves it."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it; a race with another process is possible)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def is_listening(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_port_free(port: int, what: str, host: str = "127.0.0.1") -> None:
    """Raise PortInUseError unless host:port can be bound.

    `what` names the component and its setting, e.g. "API, CEDAR_API_PORT", so the message tells the user
    what to change.
    """
    message = f"port {port} ({what}) is already in use; stop whatever holds it or choose another port"
    if is_listening(port, host):
        raise PortInUseError(message)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR like the servers themselves: a socket in TIME_WAIT from our last run is no conflict,
        # while a listener on the same port still is.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            raise PortInUseError(message) from error


def wait_for_port(port: int, host: str = "127.0.0.1", timeout: float = 30.0) -> bool:
    """Poll until host:port accepts connections; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if is_listening(port, host):
            return True
        time.sleep(0.05)
    return False
