"""API read benchmark: ``.venv/bin/python -m bench.api [--concurrency 50] [--seconds 10] [--processes 2]
[--launcher api-serve|uvicorn-workers]``.

Starts its own embedded PostgreSQL (devstack) and the real app in N processes (``python -m api.serve``, or
``uvicorn --workers`` to compare), seeds 1,000
students (400 families, 20 teachers, 8 lessons per student), signs in through POST /api/v1/auth/login, then,
in one run, drives each endpoint with N concurrent clients for a fixed time and reports p50/p95/p99 latency and
requests per second:

- trivial: GET /docs (a static page of the same app: routing, middleware, uvicorn, the network; no auth, no SQL)
- public catalogue: GET /api/v1/instruments (no auth, one small query)
- parent's profile: GET /api/v1/auth/me (what authentication alone costs: JWT, principal lookup, two row reads)
- parent's lessons: GET /api/v1/lessons as a parent (JWT verification, principal lookup, family-scoped query)
- admin's students: GET /api/v1/students as an admin (first page of 1,000, with the total count)

Latency is measured by the client, end to end over HTTP on 127.0.0.1; client and server share the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import httpx
from alembic import command
from alembic.config import Config
from sqlalchemy import insert

from bench.stats import percentile
from core.db import create_engine, create_session_factory, transaction
from core.passwords import hash_password
from core.settings import Settings
from devstack.ports import free_port
from devstack.postgres import EmbeddedPostgres
from models import Lesson, Parent, Role, Student, Teacher, User
from scripts.seed_demo import seed_demo

REPO_ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench password 1234"
FAMILIES, CHILDREN_PER_FAMILY_CYCLE, TEACHERS, LESSONS_PER_STUDENT = 400, (2, 3, 2, 3, 2), 20, 8
STUDENTS = 1000


@dataclass(frozen=True)
class Result:
    name: str
    latencies_ms: list[float]
    errors: int
    seconds: float

    def row(self) -> str:
        latencies = self.latencies_ms
        rps = len(latencies) / self.seconds
        return (
            f"| {self.name:<34} | {len(latencies):>7} | {rps:>7.0f} | {statistics.median(latencies):>6.1f} | "
            f"{percentile(latencies, 0.95):>6.1f} | {percentile(latencies, 0.99):>6.1f} | {self.errors:>6} |"
        )


async def seed(url: str, settings: Settings) -> tuple[str, str]:
    """The demo school plus 1,000 students; returns the emails of the benchmark's parent and admin."""
    engine = create_engine(settings, url)
    sessions = create_session_factory(engine)
    today = datetime.now(settings.timezone).date()
    async with transaction(sessions) as session:
        await seed_demo(session, settings, today)
    password_hash = hash_password(PASSWORD)
    users: list[dict[str, Any]] = []
    parents: list[dict[str, Any]] = []
    students: list[dict[str, Any]] = []
    teachers: list[dict[str, Any]] = []
    lessons: list[dict[str, Any]] = []
    for t in range(TEACHERS):
        user_id = uuid.uuid4()
        users.append({"id": user_id, "email": f"bench-teacher-{t}@cedar.test", "role": Role.teacher})
        teachers.append(
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "first_name": "Teach",
                "last_name": f"Er{t}",
                "display_name": f"Teacher {t}",
                "email": f"bench-teacher-{t}@cedar.test",
                "instruments": ["piano"],
                "capacity": 100,
                "active_students": 0,
                "bio": "",
                "is_active": True,
            }
        )
    for f in range(FAMILIES):
        user_id = uuid.uuid4()
        email = f"bench-parent-{f}@cedar.test"
        users.append({"id": user_id, "email": email, "role": Role.parent, "password_hash": password_hash})
        parents.append(
            {
                "id": uuid.uuid4(),
                "user_id": user_id,
                "first_name": "Par",
                "last_name": f"Ent{f}",
                "email": email,
                "phone": "604-555-0100",
            }
        )
    family = 0
    while len(students) < STUDENTS:
        for _ in range(CHILDREN_PER_FAMILY_CYCLE[family % len(CHILDREN_PER_FAMILY_CYCLE)]):
            if len(students) < STUDENTS:
                students.append(
                    {
                        "id": uuid.uuid4(),
                        "parent_id": parents[family % FAMILIES]["id"],
                        "first_name": f"Kid{len(students)}",
                        "last_name": f"Ent{family % FAMILIES}",
                        "date_of_birth": date(2015, 1, 1) + timedelta(days=len(students)),
                        "instrument": "piano",
                        "is_active": True,
                    }
                )
        family += 1
    start = datetime.combine(today, datetime.min.time(), UTC) + timedelta(hours=15)
    slots = [0] * TEACHERS
    for index, student in enumerate(students):
        teacher = index % TEACHERS
        for week in range(LESSONS_PER_STUDENT):
            starts_at = start + timedelta(weeks=week, minutes=30 * slots[teacher])
            lessons.append(
                {
                    "id": uuid.uuid4(),
                    "kind": "regular",
                    "status": "scheduled",
                    "teacher_id": teachers[teacher]["id"],
                    "student_id": student["id"],
                    "starts_at": starts_at,
                    "ends_at": starts_at + timedelta(minutes=30),
                    "notes": "",
                }
            )
        slots[teacher] += 1
    admin_email = "bench-admin@cedar.test"
    users.append({"id": uuid.uuid4(), "email": admin_email, "role": Role.admin, "password_hash": password_hash})
    async with transaction(sessions) as session:
        for model, rows in (
            (User, users),
            (Teacher, teachers),
            (Parent, parents),
            (Student, students),
            (Lesson, lessons),
        ):
            for chunk in range(0, len(rows), 2000):
                await session.execute(insert(model), rows[chunk : chunk + 2000])
    await engine.dispose()
    return str(parents[0]["email"]), admin_email


async def sign_in(base: str, email: str) -> dict[str, str]:
    async with httpx.AsyncClient(base_url=base) as client:
        response = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        response.raise_for_status()
        return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def drive(base: str, name: str, path: str, headers: dict[str, str], concurrency: int, seconds: float) -> Result:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base, connector=connector, headers=headers) as client:

        async def one() -> float:
            began = time.perf_counter()
            async with client.get(path) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{path}: {response.status}")
            return (time.perf_counter() - began) * 1000

        async def client_loop(until: float, record: bool) -> None:
            nonlocal errors
            while time.perf_counter() < until:
                try:
                    latency = await one()
                except (RuntimeError, aiohttp.ClientError):
                    errors += 1
                    continue
                if record:
                    latencies.append(latency)

        warm_until = time.perf_counter() + 2  # connections open, caches and JIT-free paths warm
        await asyncio.gather(*(client_loop(warm_until, False) for _ in range(concurrency)))
        began = time.perf_counter()
        await asyncio.gather(*(client_loop(began + seconds, True) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return Result(name, latencies, errors, elapsed)


def start_api(url: str, port: int, args: argparse.Namespace, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "CEDAR_DATABASE_URL": url,
        "CEDAR_LOG_LEVEL": "WARNING",
        "CEDAR_DB_POOL_SIZE": "20",
        "CEDAR_LOGIN_RATE_LIMIT_PER_MINUTE_IP": "1000",
    }
    if args.launcher == "uvicorn-workers":  # for comparison: processes sharing one listening socket
        server = ["-m", "uvicorn", "api.main:serve", "--factory", "--workers", str(args.processes)]
    else:
        server = ["-m", "api.serve", "--processes", str(args.processes)]
    command_line = [sys.executable, *server, "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]
    command_line += ["--log-level", "warning"]
    process = subprocess.Popen(command_line, cwd=REPO_ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"the API did not start; see {log}")


async def run(args: argparse.Namespace) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="cedar-bench-"))
    postgres = EmbeddedPostgres(workdir / "pg", free_port(), log_dir=workdir / "logs", fast=True)
    postgres.start()
    api: subprocess.Popen[bytes] | None = None
    finished = False
    try:
        postgres.create_database("bench")
        url = postgres.url("bench")
        config = Config(str(REPO_ROOT / "alembic.ini"))
        config.attributes["url"] = url
        await asyncio.to_thread(command.upgrade, config, "head")  # alembic's env.py runs its own event loop
        settings = Settings(database_url=url, log_level="WARNING")
        parent_email, admin_email = await seed(url, settings)
        port = free_port()
        api = start_api(url, port, args, workdir / "logs" / "api.log")
        base = f"http://127.0.0.1:{port}"
        parent, admin = await sign_in(base, parent_email), await sign_in(base, admin_email)
        scenarios = [
            ("trivial: GET /docs", "/docs", {}),
            ("public: GET /api/v1/instruments", "/api/v1/instruments", {}),
            ("parent: GET /api/v1/auth/me", "/api/v1/auth/me", parent),
            ("parent: GET /api/v1/lessons", "/api/v1/lessons", parent),
            ("admin: GET /api/v1/students", "/api/v1/students", admin),
        ]
        print(
            f"{STUDENTS} students, {FAMILIES} families, {STUDENTS * LESSONS_PER_STUDENT} lessons; "
            f"{args.concurrency} concurrent clients, {args.seconds:.0f} s each; {args.processes} API processes "
            f"({args.launcher}); {os.cpu_count()} CPUs shared by client and server"
        )
        print("| endpoint                           |    reqs |   req/s | p50 ms | p95 ms | p99 ms | errors |")
        print("|------------------------------------|---------|---------|--------|--------|--------|--------|")
        for name, path, headers in scenarios:
            result = await drive(base, name, path, headers, args.concurrency, args.seconds)
            print(result.row(), flush=True)
        finished = True
    finally:
        if api is not None:
            api.terminate()
            api.wait(timeout=30)
        postgres.stop()
        if finished:
            shutil.rmtree(workdir, ignore_errors=True)  # ~90 MB of database per run
        else:
            print(f"logs kept in {workdir / 'logs'}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=2, help="API processes (default 2, one per core here)")
    # api-serve: a listening socket per process (SO_REUSEPORT); uvicorn-workers: one shared socket, to compare.
    parser.add_argument("--launcher", choices=["api-serve", "uvicorn-workers"], default="api-serve")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
