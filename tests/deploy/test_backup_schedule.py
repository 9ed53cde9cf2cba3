"""The compose file's scheduled backup (deploy/backup/pg-backup.sh), run once against the test database with the
embedded PostgreSQL's client programs: a whole custom-format dump per database, old dumps pruned, the health check
true only while a recent dump exists."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from devstack.postgres import PG_BIN, SUPERUSER, EmbeddedPostgres
from scripts import backup

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "backup" / "pg-backup.sh"
DAY = 86400


def run(mode: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", str(SCRIPT), mode], capture_output=True, text=True, env=env, timeout=60)


def test_one_round_dumps_each_database_prunes_old_dumps_and_feeds_the_health_check(
    postgres: EmbeddedPostgres, db_url: str, tmp_path: Path
) -> None:
    database = urlsplit(db_url).path.lstrip("/")
    folder = tmp_path / "backups"
    env = {
        "PATH": f"{PG_BIN}:{os.environ['PATH']}",
        "PGHOST": postgres.host,
        "PGPORT": str(postgres.port),
        "PGUSER": SUPERUSER,
        "BACKUP_DATABASES": database,
        "BACKUP_DIR": str(folder),
        "BACKUP_INTERVAL_SECONDS": str(DAY),
        "BACKUP_KEEP_DAYS": "14",
    }
    assert run("check", env).returncode != 0  # no dump yet: unhealthy
    folder.mkdir()
    old, recent = folder / f"{database}-old.dump", folder / f"{database}-recent.dump"
    for path, age_days in ((old, 20), (recent, 3)):
        path.write_bytes(b"an earlier dump")
        stamp = time.time() - age_days * DAY
        os.utime(path, (stamp, stamp))

    result = run("once", env)
    assert result.returncode == 0, result.stderr
    assert not old.exists()
    assert recent.exists()
    made = [p for p in folder.iterdir() if p not in {recent}]
    assert len(made) == 1
    assert made[0].name.startswith(f"{database}-")
    assert made[0].suffix == ".dump"
    assert not list(folder.glob("*.partial"))
    # A real custom-format dump of the database: pg_restore lists the tables it holds.
    listing = subprocess.run([PG_BIN / "pg_restore", "--list", made[0]], capture_output=True, text=True, check=True)
    for table in backup.row_counts(db_url):
        assert f"TABLE public {table} " in listing.stdout
    assert run("check", env).returncode == 0


def test_a_failed_round_keeps_every_earlier_dump(postgres: EmbeddedPostgres, db_url: str, tmp_path: Path) -> None:
    folder = tmp_path / "backups"
    folder.mkdir()
    old = folder / "cedar-old.dump"
    old.write_bytes(b"the last good dump")
    stamp = time.time() - 30 * DAY
    os.utime(old, (stamp, stamp))
    database = urlsplit(db_url).path.lstrip("/")
    env = {
        "PATH": f"{PG_BIN}:{os.environ['PATH']}",
        "PGHOST": postgres.host,
        "PGPORT": str(postgres.port),
        "PGUSER": SUPERUSER,
        # The first database dumps, the second does not exist: the round fails as a whole.
        "BACKUP_DATABASES": f"{database} no_such_database",
        "BACKUP_DIR": str(folder),
        "BACKUP_KEEP_DAYS": "14",
    }
    result = run("once", env)
    assert result.returncode != 0
    assert "no_such_database" in result.stderr
    assert old.exists()
    assert not list(folder.glob("*.partial"))
