from __future__ import annotations

import socket

import pytest

from devstack.ports import PortInUseError, ensure_port_free, free_port, is_listening


def test_free_port_can_be_bound() -> None:
    port = free_port()
    ensure_port_free(port, "API, CEDAR_API_PORT")
    assert not is_listening(port)


def test_a_bound_port_is_refused_with_the_setting_to_change() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        with pytest.raises(PortInUseError) as caught:
            ensure_port_free(port, "API, CEDAR_API_PORT")
    assert f"port {port} (API, CEDAR_API_PORT) is already in use" in str(caught.value)
