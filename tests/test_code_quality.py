"""The standing code checks run with the suite, so CI refuses code that ruff or mypy would flag."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT

TYPED_PACKAGES = [
    "core",
    "api",
    "workflows",
    "activities",
    "workers",
    "domain",
    "devstack",
    "models",
    "scripts",
    "tests",
]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=280)


def test_ruff_finds_nothing() -> None:
    checked = _run("ruff", "check", ".")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    formatted = _run("ruff", "format", "--check", ".")
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


def test_mypy_finds_nothing() -> None:
    result = _run("mypy", *TYPED_PACKAGES)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr
