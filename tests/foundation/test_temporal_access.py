"""How Cedar reaches Temporal: TLS and API key settings become Client.connect's arguments, and a configured
certificate authority and client certificate are really used in a TLS handshake."""

from __future__ import annotations

import datetime
import queue
import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from core.settings import Settings
from core.temporal import TemporalAccessError, connect_temporal, temporal_access

SERVER_NAME = "temporal.cedar.test"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, environment="test", **values)  # type: ignore[call-arg]


def test_without_tls_settings_the_connection_is_plain() -> None:
    access = temporal_access(settings(temporal_namespace="school"))
    assert (access.namespace, access.tls, access.api_key) == ("school", False, None)


def test_empty_values_mean_unset() -> None:
    empty = {
        "temporal_tls_ca_cert_file": "",
        "temporal_tls_client_cert_file": "",
        "temporal_tls_client_key_file": "",
        "temporal_tls_server_name": "",
        "temporal_api_key": "",
    }
    assert temporal_access(settings(**empty)).tls is False


def test_an_api_key_implies_tls_with_the_system_roots() -> None:
    access = temporal_access(settings(temporal_api_key="tcld-key"))
    assert (access.tls, access.api_key) == (True, "tcld-key")
    assert "tcld-key" not in repr(settings(temporal_api_key="tcld-key"))


def test_tls_alone_uses_the_system_roots() -> None:
    assert temporal_access(settings(temporal_tls=True)).tls is True


def test_certificate_files_and_server_name_make_the_tls_config(tmp_path: Path) -> None:
    for name in ("ca.pem", "client.pem", "client.key"):
        (tmp_path / name).write_bytes(f"contents of {name}".encode())
    access = temporal_access(
        settings(
            temporal_tls_ca_cert_file=tmp_path / "ca.pem",
            temporal_tls_client_cert_file=tmp_path / "client.pem",
            temporal_tls_client_key_file=tmp_path / "client.key",
            temporal_tls_server_name=SERVER_NAME,
        )
    )
    assert not isinstance(access.tls, bool)
    assert access.tls.server_root_ca_cert == b"contents of ca.pem"
    assert access.tls.client_cert == b"contents of client.pem"
    assert access.tls.client_private_key == b"contents of client.key"
    assert access.tls.domain == SERVER_NAME


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"temporal_tls_ca_cert_file": "/nonexistent/ca.pem"}, "CEDAR_TEMPORAL_TLS_CA_CERT_FILE: cannot read"),
        ({"temporal_tls_client_cert_file": "/etc/hostname"}, "CEDAR_TEMPORAL_TLS_CLIENT_KEY_FILE is not set"),
        ({"temporal_tls_client_key_file": "/etc/hostname"}, "CEDAR_TEMPORAL_TLS_CLIENT_CERT_FILE is not set"),
        (
            {"temporal_tls_client_cert_file": "/etc/hostname", "temporal_tls_client_key_file": "/nonexistent/k"},
            "CEDAR_TEMPORAL_TLS_CLIENT_KEY_FILE: cannot read",
        ),
    ],
)
def test_missing_files_are_refused_by_setting(values: dict[str, str], named: str) -> None:
    with pytest.raises(TemporalAccessError, match=named):
        temporal_access(settings(**values))


# --- a real handshake against a local TLS listener ---


@dataclass
class Pki:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _issue(
    directory: Path, stem: str, subject: str, issuer: tuple[x509.Name, ec.EllipticCurvePrivateKey] | None, **kw: Any
) -> tuple[x509.Name, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (_name(subject), key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if issuer is None:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    if "san" in kw:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(kw["san"])]), critical=False)
    if "usage" in kw:
        builder = builder.add_extension(x509.ExtendedKeyUsage([kw["usage"]]), critical=False)
    cert = builder.sign(issuer_key, hashes.SHA256())
    (directory / f"{stem}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / f"{stem}.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return _name(subject), key


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    from cryptography.x509.oid import ExtendedKeyUsageOID

    ca = _issue(tmp_path, "ca", "Cedar test CA", None)
    _issue(tmp_path, "server", SERVER_NAME, ca, san=SERVER_NAME, usage=ExtendedKeyUsageOID.SERVER_AUTH)
    _issue(tmp_path, "client", "cedar-worker", ca, usage=ExtendedKeyUsageOID.CLIENT_AUTH)
    return Pki(
        tmp_path / "ca.pem",
        tmp_path / "server.pem",
        tmp_path / "server.key",
        tmp_path / "client.pem",
        tmp_path / "client.key",
    )


@dataclass
class Handshake:
    completed: bool
    server_name: str | None
    client_subject: str | None
    error: str = ""


@pytest.fixture
def tls_listener(pki: Pki) -> Iterator[tuple[str, queue.Queue[Handshake]]]:
    """A TLS server on 127.0.0.1 that requires a client certificate from the test CA and reports each handshake
    (it speaks no gRPC, so the Temporal client's connection fails right after)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.server_cert, pki.server_key)
    context.load_verify_locations(pki.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    context.set_alpn_protocols(["h2"])
    names: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: names.append(name)  # type: ignore[assignment,func-returns-value]
    handshakes: queue.Queue[Handshake] = queue.Queue()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(10)
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    der = tls.getpeercert(binary_form=True)
                    subject = x509.load_der_x509_certificate(der).subject.rfc4514_string() if der else None
                    handshakes.put(Handshake(True, names[-1] if names else None, subject))
            except (ssl.SSLError, OSError) as error:
                handshakes.put(Handshake(False, names[-1] if names else None, None, str(error)))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"127.0.0.1:{listener.getsockname()[1]}", handshakes
    stop.set()
    thread.join()
    listener.close()


async def test_connect_completes_an_mtls_handshake_with_the_configured_ca_and_client_certificate(
    pki: Pki, tls_listener: tuple[str, queue.Queue[Handshake]]
) -> None:
    address, handshakes = tls_listener
    configured = settings(
        temporal_tls_ca_cert_file=pki.ca,
        temporal_tls_client_cert_file=pki.client_cert,
        temporal_tls_client_key_file=pki.client_key,
        temporal_tls_server_name=SERVER_NAME,
    )
    with pytest.raises(RuntimeError):  # past the handshake the listener is no Temporal server
        await connect_temporal(configured, address)
    first = handshakes.get(timeout=10)
    assert first == Handshake(True, SERVER_NAME, "CN=cedar-worker"), first


async def test_without_the_configured_ca_the_server_is_not_trusted(
    pki: Pki, tls_listener: tuple[str, queue.Queue[Handshake]]
) -> None:
    address, handshakes = tls_listener
    configured = settings(
        temporal_tls_client_cert_file=pki.client_cert,
        temporal_tls_client_key_file=pki.client_key,
        temporal_tls_server_name=SERVER_NAME,
    )
    with pytest.raises(RuntimeError):
        await connect_temporal(configured, address)
    first = handshakes.get(timeout=10)
    assert not first.completed, first
    assert first.server_name == SERVER_NAME, first
