"""deploy/Dockerfile's shape, parsed (no Docker engine here to build it): a builder stage installing the pinned
dependencies into a venv, and a slim runtime stage that copies only the venv, runs as a non-root user and checks
``/health``."""

from __future__ import annotations

import fnmatch
import http.server
import importlib.util
import json
import re
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOCKERFILE = Path(__file__).resolve().parents[2] / "deploy" / "Dockerfile"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [argument for kind, argument in self.instructions if kind == keyword]


def parse(text: str) -> list[Stage]:
    """Stages with their instructions (continuation lines joined, comments dropped)."""
    joined = re.sub(r"\\\n", " ", text)
    stages: list[Stage] = []
    for raw in joined.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, argument = line.partition(" ")
        keyword, argument = keyword.upper(), " ".join(argument.split())
        if keyword == "FROM":
            match = re.fullmatch(r"(\S+)(?: AS (\S+))?", argument, re.IGNORECASE)
            assert match, line
            stages.append(Stage(match[1], match[2]))
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, argument))
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse(DOCKERFILE.read_text())


def test_the_builder_installs_the_pinned_dependencies_into_a_venv(stages: list[Stage]) -> None:
    assert len(stages) >= 2
    builder = stages[0]
    assert builder.name == "builder"
    runs = " && ".join(builder.all("RUN"))
    assert "python -m venv /opt/venv" in runs
    assert re.search(r"/opt/venv/bin/pip install -c constraints\.txt \.", runs)
    assert any("constraints.txt" in copied for copied in builder.all("COPY"))


def test_the_runtime_is_slim_non_root_and_checks_health(stages: list[Stage]) -> None:
    runtime = stages[-1]
    builder = stages[0]
    # Pinned slim bases, the same Python in both stages (the venv's interpreter path must exist at runtime).
    for stage in stages:
        assert re.fullmatch(r"python:3\.\d+\.\d+-slim-\w+", stage.base), stage.base
    assert runtime.base == builder.base
    assert "COPY --from=builder /opt/venv /opt/venv" in [f"COPY {c}" for c in runtime.all("COPY")]
    # Nothing is built or downloaded in the runtime stage.
    for command in runtime.all("RUN"):
        assert not re.search(r"\bpip\b|apt-get|gcc|curl|wget", command), command
    users = runtime.all("USER")
    assert users
    assert users[-1] not in {"root", "0"}
    assert any(f"--uid {users[-1]}" in command for command in runtime.all("RUN"))
    checks = runtime.all("HEALTHCHECK")
    assert len(checks) == 1
    options, _, command = checks[0].partition(" CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    assert json.loads(command) == ["python", "/app/deploy/healthcheck.py", "http://127.0.0.1:8000/health"]
    assert "deploy/healthcheck.py" in " ".join(runtime.all("COPY"))
    assert json.loads(runtime.all("CMD")[-1])[:2] == ["uvicorn", "api.main:serve"]


class _Answers(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 503)
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


def test_the_health_check_script_passes_on_200_only() -> None:
    spec = importlib.util.spec_from_file_location("healthcheck", DOCKERFILE.parent / "healthcheck.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert module.main([f"{base}/health"]) == 0
        assert module.main([f"{base}/degraded"]) == 1  # /health's 503: a dependency down
    finally:
        server.shutdown()
        thread.join()
    assert module.main(["http://127.0.0.1:9/health"]) == 1  # nothing listens on the discard port
    assert module.main([]) == 2


def test_every_data_file_of_the_packages_is_installed_with_them() -> None:
    """The image installs Cedar from its source (not editable): a template left out of package-data is missing
    there although every test here, run from the checkout, finds it."""
    root = DOCKERFILE.parents[1]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    package_data: dict[str, list[str]] = config["package-data"]
    missing = []
    for top in config["packages"]["find"]["include"]:
        for path in (root / top.rstrip("*")).rglob("*"):
            if not path.is_file() or path.suffix in {".py", ".pyc"} or "__pycache__" in path.parts:
                continue
            covered = False
            for package, patterns in package_data.items():
                folder = root / package.replace(".", "/")
                if folder in path.parents:
                    relative = path.relative_to(folder).as_posix()
                    covered = covered or any(fnmatch.fnmatch(relative, pattern) for pattern in patterns)
            if not covered:
                missing.append(str(path.relative_to(root)))
    assert missing == []
