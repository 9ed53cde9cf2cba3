"""Enrollment benchmark: ``.venv/bin/python -m bench.enrollment [--own-stack [--api-processes 2]] [--n 200]
[--concurrency 10]``.

Drives N enrollments through ``POST /api/v1/enrollments`` with C in flight at a time and reports, for the same
run: the POST's p50/p95 latency, p50/p95 time from POST to ``demo_scheduled`` and enrollments per second; then
the same figures for a baseline workflow of the same shape (``bench/baseline_workflow.py``: the same steps and
activity kinds with no-op bodies, the same start options) on the same Temporal server.

Against a running stack (``./cedar run`` in another terminal; the default settings find it) or, with
``--own-stack``, against a fresh one it starts in a temporary directory on free ports (PostgreSQL, Temporal,
localstripe, the SMTP sink, the API (``api.serve``) and one worker, as separate processes like in production)
and stops after. Against a running stack, raise its per-address limit on the public form first
(``CEDAR_ENROLLMENT_RATE_LIMIT_PER_HOUR_IP``), or the run meets 429s after the first few posts.
The time to ``demo_scheduled`` is read from the enrollment row's step timestamp (written by the step itself),
so polling does not inflate it. It adds benchmark teachers (piano, free all week) so no enrollment waitlists.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from datetime import time as clock
from pathlib import Path

import httpx
from sqlalchemy import select
from sqlmodel import col
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.worker import Worker

from bench.baseline_workflow import BASELINE_WORKFLOW, BaselineEnrollmentShape, NoOp, noop
from bench.stats import percentile
from core.db import create_engine, create_session_factory, transaction
from core.settings import Settings
from core.temporal import ENROLLMENT_STATE, connect_temporal
from devstack.ports import free_port
from devstack.stack import plan, start
from devstack.supervisor import Supervisor
from models import Enrollment, Teacher, TeacherAvailability

BENCH_TEACHERS = 6


@dataclass
class Figures:
    name: str
    post_ms: list[float]
    to_state_ms: list[float]
    seconds: float

    def rows(self) -> list[str]:
        rate = len(self.to_state_ms) / self.seconds
        post = (
            f"{statistics.median(self.post_ms):7.1f} | {percentile(self.post_ms, 0.95):7.1f}"
            if self.post_ms
            else "    n/a |     n/a"
        )
        done = f"{statistics.median(self.to_state_ms):7.1f} | {percentile(self.to_state_ms, 0.95):7.1f}"
        return [f"| {self.name:<40} | {len(self.to_state_ms):>5} | {post} | {done} | {rate:6.1f} |"]


def application(i: int) -> dict:
    return {
        "parent": {
            "first_name": "Bench",
            "last_name": f"Family{i}",
            "email": f"bench-{uuid.uuid4().hex[:12]}@bench.example",
            "phone": "+1 604 555 0100",
        },
        "student": {"first_name": f"Kid{i}", "last_name": "Bench", "date_of_birth": f"{date.today().year - 10}-05-01"},
        "instrument": "piano",
        "lesson_minutes": 30,
        "billing_interval": "month",
        "preferred_windows": [{"weekday": d, "start": "08:00", "end": "21:00"} for d in range(7)],
        "payment_method_id": "pm_card_visa",
        "consents": {"privacy_policy": True, "marketing_email": False},
    }


async def add_bench_teachers(settings: Settings, database_url: str) -> None:
    engine = create_engine(settings, database_url)
    async with transaction(create_session_factory(engine)) as session:
        first = col(Teacher.email) == "bench-teacher-0@bench.example"
        existing = await session.scalar(select(col(Teacher.id)).where(first))
        if existing is None:
            for n in range(BENCH_TEACHERS):
                teacher = Teacher(
                    first_name="Bench",
                    last_name=f"Teacher{n}",
                    display_name=f"Bench T{n}.",
                    email=f"bench-teacher-{n}@bench.example",
                    instruments=["piano"],
                    capacity=100_000,
                )
                session.add(teacher)
                await session.flush()
                session.add_all(
                    TeacherAvailability(teacher_id=teacher.id, weekday=d, start_time=clock(8), end_time=clock(21))
                    for d in range(7)
                )
    await engine.dispose()


class DemoScheduledWatcher:
    """One poller for every enrollment in flight: when each reached ``demo_scheduled`` (the step's own time)."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        self._engine = create_engine(settings, database_url)
        self._sessions = create_session_factory(self._engine)
        self._waiting: dict[uuid.UUID, asyncio.Future[datetime]] = {}

    def watch(self, enrollment_id: uuid.UUID) -> asyncio.Future[datetime]:
        return self._waiting.setdefault(enrollment_id, asyncio.get_running_loop().create_future())

    async def run(self) -> None:
        while True:
            pending = [i for i, f in self._waiting.items() if not f.done()]
            if pending:
                async with self._sessions() as session:
                    rows = await session.execute(
                        select(col(Enrollment.id), col(Enrollment.state), col(Enrollment.steps)).where(
                            col(Enrollment.id).in_(pending)
                        )
                    )
                for enrollment_id, state, steps in rows:
                    reached = next((s["at"] for s in steps if s["state"] == "demo_scheduled"), None)
                    if reached:
                        self._waiting[enrollment_id].set_result(datetime.fromisoformat(reached))
                    elif state in ("failed", "cancelled", "withdrawn", "waitlisted"):
                        self._waiting[enrollment_id].set_exception(RuntimeError(f"enrollment ended {state}"))
            await asyncio.sleep(0.05)  # the step timestamps give the precision; a light poll spares the CPU

    async def close(self) -> None:
        await self._engine.dispose()


async def _drive(
    n: int, concurrency: int, one: Callable[[int], Awaitable[tuple[float | None, float, float]]]
) -> tuple[list, list, float]:
    """Run ``one(i)`` n times, ``concurrency`` at a time; returns POST latencies, times to the state, seconds."""
    gate = asyncio.Semaphore(concurrency)
    posts: list[float] = []
    done: list[float] = []
    finished: list[float] = []

    async def guarded(i: int) -> None:
        async with gate:
            post_ms, state_ms, finished_at = await one(i)
            if post_ms is not None:
                posts.append(post_ms)
            done.append(state_ms)
            finished.append(finished_at)

    started = time.time()
    await asyncio.gather(*(guarded(i) for i in range(n)))
    return posts, done, max(finished) - started


async def bench_enrollments(api_url: str, settings: Settings, database_url: str, n: int, concurrency: int) -> Figures:
    watcher = DemoScheduledWatcher(settings, database_url)
    polling = asyncio.create_task(watcher.run())
    limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
    async with httpx.AsyncClient(base_url=api_url, timeout=30, limits=limits) as http:

        async def one(i: int) -> tuple[float | None, float, float]:
            sent = time.time()
            response = await http.post("/api/v1/enrollments", json=application(i))
            answered = time.time()
            response.raise_for_status()
            reached = await watcher.watch(uuid.UUID(response.json()["enrollment_id"]))
            return (answered - sent) * 1000, (reached.timestamp() - sent) * 1000, reached.timestamp()

        for i in range(min(5, n)):  # warm-up: connections, caches, the worker's first tasks
            await one(-1 - i)
        posts, done, seconds = await _drive(n, concurrency, one)
    polling.cancel()
    await watcher.close()
    return Figures(f"enrollment via the API (C={concurrency})", posts, done, seconds)


async def bench_baseline(client: Client, n: int, concurrency: int) -> Figures:
    task_queue = f"bench-baseline-{uuid.uuid4().hex[:8]}"
    async with Worker(client, task_queue=task_queue, workflows=[BaselineEnrollmentShape], activities=[noop]):

        async def one(i: int) -> tuple[float | None, float, float]:
            sent = time.time()
            handle = await client.start_workflow(
                BASELINE_WORKFLOW,
                NoOp(step=str(i)),
                id=f"bench-baseline-{uuid.uuid4()}",
                task_queue=task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                search_attributes=TypedSearchAttributes([SearchAttributePair(ENROLLMENT_STATE, "received")]),
                request_eager_start=True,
            )
            reached: float = await handle.result()
            return None, (reached - sent) * 1000, reached

        for i in range(min(5, n)):
            await one(-1 - i)
        _, done, seconds = await _drive(n, concurrency, one)
    return Figures(f"baseline, same shape, no-op steps (C={concurrency})", [], done, seconds)


async def measure(settings: Settings, api_url: str, database_url: str, temporal_address: str, n: int, c: int) -> None:
    await add_bench_teachers(settings, database_url)
    client = await connect_temporal(settings, temporal_address)
    results = [await bench_enrollments(api_url, settings, database_url, n, c), await bench_baseline(client, n, c)]
    print(f"\n{n} enrollments, {c} at a time, on {api_url} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n")
    print(
        "| run                                      |     n | POST p50 | POST p95 | to demo p50 | to demo p95 | per s |"
    )
    print("|------------------------------------------|-------|---------|---------|---------|---------|--------|")
    for figures in results:
        print("\n".join(figures.rows()))
    print("\n(milliseconds; 'to demo' = POST sent → demo_scheduled; for the baseline, start → its demo_scheduled step)")


def own_stack_settings(directory: Path, api_processes: int) -> Settings:
    return Settings(
        data_dir=directory,
        api_port=free_port(),
        api_processes=api_processes,
        postgres_port=free_port(),
        temporal_port=free_port(),
        temporal_ui_port=free_port(),
        stripe_port=free_port(),
        smtp_port=free_port(),
        mail_http_port=free_port(),
        log_level="WARNING",
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.enrollment", description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=200, help="enrollments per run (default 200)")
    parser.add_argument("--concurrency", type=int, default=10, help="enrollments in flight (default 10)")
    parser.add_argument("--own-stack", action="store_true", help="start a fresh stack on free ports, then stop it")
    parser.add_argument(
        "--api-processes", type=int, default=2, help="API processes of the own stack (default 2, one per core here)"
    )
    args = parser.parse_args()
    if not args.own_stack:
        settings = Settings()
        api_url = f"http://{settings.host}:{settings.api_port}"
        asyncio.run(
            measure(
                settings,
                api_url,
                settings.effective_database_url,
                settings.effective_temporal_address,
                args.n,
                args.concurrency,
            )
        )
        return
    # Every POST comes from this one address: the own stack's API lifts the public form's per-address limit.
    os.environ.setdefault("CEDAR_ENROLLMENT_RATE_LIMIT_PER_HOUR_IP", str(10 * args.n))
    with tempfile.TemporaryDirectory(prefix="cedar-bench-") as directory:
        settings = own_stack_settings(Path(directory), args.api_processes)
        stack = plan(settings)
        supervisor = Supervisor()
        try:
            print(f"starting an own stack ({args.api_processes} API processes)...", flush=True)
            start(stack, supervisor)
            assert stack.temporal is not None
            asyncio.run(
                measure(settings, stack.api_url, stack.database_url, stack.temporal.address, args.n, args.concurrency)
            )
        finally:
            supervisor.stop_all()


if __name__ == "__main__":
    main()
