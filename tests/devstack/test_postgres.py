from __future__ import annotations

import os
import signal
from pathlib import Path

from devstack.ports import free_port
from devstack.postgres import EmbeddedPostgres


def test_data_survives_a_restart_of_the_same_data_dir(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", free_port(), log_dir=tmp_path / "logs", fast=True)
    server.start()
    try:
        server.create_database("school")
        server.create_database("school")  # idempotent
        server.psql("CREATE TABLE lesson (id int); INSERT INTO lesson VALUES (7)", "school")
        server.stop()
        assert not server.is_running()

        server.start()
        assert server.psql("SELECT id FROM lesson", "school") == "7"
        server.create_database("copy", template="school")
        assert server.psql("SELECT id FROM lesson", "copy") == "7"
        server.drop_database("copy")
        assert not server.database_exists("copy")
        assert server.url("school") == f"postgresql://postgres@127.0.0.1:{server.port}/school"
    finally:
        server.stop()


def test_a_killed_server_leaves_nothing_that_blocks_the_next_start(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", free_port(), log_dir=tmp_path / "logs", fast=True)
    server.start()
    try:
        server.psql("CREATE TABLE kept (id int)")
        server.psql("CHECKPOINT")  # synchronous_commit=off: flush the WAL before the kill, not at the writer's pace
        assert server.process.pid is not None
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.stop()
        assert (tmp_path / "pg" / "postmaster.pid").exists()

        server.start()
        assert server.psql("SELECT count(*) FROM kept") == "0"
    finally:
        server.stop()


def test_a_lock_file_naming_a_reused_pid_is_cleared(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "pg", free_port(), log_dir=tmp_path / "logs", fast=True)
    server.start()
    server.stop()
    # After a reboot the old postmaster's PID often belongs to an unrelated process, here: ourselves.
    lines = [str(os.getpid()), str(tmp_path / "pg"), "0", str(server.port), "", "", "", ""]
    (tmp_path / "pg" / "postmaster.pid").write_text("\n".join(lines) + "\n")
    server.start()
    try:
        assert server.is_ready()
    finally:
        server.stop()
