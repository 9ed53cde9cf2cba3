"""``python -m scripts.backup``'s command line: counts printed per table, a failed dump leaves no file behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.postgres import EmbeddedPostgres
from scripts import backup


def test_counts_prints_a_line_per_table(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert backup.main(["--database-url", db_url, "counts"]) == 0
    lines = dict(line.rsplit(" ", 1) for line in capsys.readouterr().out.splitlines())
    assert lines["alembic_version"] == "1"
    assert int(lines["instruments"]) > 0  # the reference data every test database starts with
    assert set(lines) == set(backup.row_counts(db_url))


def test_a_failed_dump_leaves_nothing_and_says_why(
    postgres: EmbeddedPostgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "dumps" / "cedar.dump"
    assert backup.main(["--database-url", postgres.url("no_such_database"), "dump", str(target)]) == 1
    assert "pg_dump failed" in capsys.readouterr().err
    assert list(target.parent.iterdir()) == []
