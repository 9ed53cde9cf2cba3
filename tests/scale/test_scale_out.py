"""Scale-out on one machine, as a cluster runs it: `./cedar run` with two API processes and two worker processes
takes enrollments and Stripe's webhooks (declines among them, and every event delivered again) while one worker
is killed outright, PostgreSQL is crash-restarted and the Temporal server is crash-restarted on its own database
file; then nothing is lost or doubled and both APIs and both workers did work."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col

from bench.faults import CedarRun, Options, suite
from bench.histories import identity_pid, scan_histories
from core.db import to_asyncpg_url
from core.temporal import connect_temporal
from models import StripeEvent

FAULTS = ["kill-worker", "restart-postgres", "restart-temporal", "webhooks"]
APPLIED = ("processed", "ignored", "unknown_customer")


async def test_two_apis_and_two_workers_survive_a_worker_kill_and_server_restarts() -> None:
    # Not pytest's tmp_path: another pytest session may prune its folders under the live stack.
    directory = Path(tempfile.mkdtemp(prefix="cedar-scale-"))
    run = CedarRun.own(directory, api_processes=2, worker_processes=2)
    printed: list[str] = []
    options = Options(faults=FAULTS, together=False, families=4, concurrency=4, window=6, outage=6, settle_timeout=90)
    try:
        api_pids = set(run.api_processes())
        survivor = run.pid("worker-2")  # the worker not killed
        failures = await suite(run, options, out=printed.append)
        restarts = run.restarts()
        client = await connect_temporal(run.settings, run.temporal_address)
        histories = await scan_histories(client)
        engine = create_async_engine(to_asyncpg_url(run.database_url))
        try:
            async with engine.connect() as connection:
                events = dict(
                    (
                        await connection.execute(
                            select(col(StripeEvent.status), func.count()).group_by(col(StripeEvent.status))
                        )
                    ).all()
                )
                repeated = await connection.scalar(
                    select(func.count()).select_from(
                        select(col(StripeEvent.stripe_event_id))
                        .group_by(col(StripeEvent.stripe_event_id))
                        .having(func.count() > 1)
                        .subquery()
                    )
                )
        finally:
            await engine.dispose()
    except Exception as error:
        raise AssertionError("".join(run.output[-30:])) from error
    finally:
        run.stop()
        shutil.rmtree(directory, ignore_errors=True)
    assert failures == [], "\n".join(printed + failures)
    # Each crashed child came back on its own; the other worker went on working.
    assert all(restarts[name] >= 1 for name in ("worker", "postgres", "temporal")), restarts
    assert len(api_pids) == 2
    # Every Stripe event stored once and acted on (the payments' ledger entries are checked once each by suite).
    assert repeated == 0
    assert sum(events.values()) > 0, events
    assert set(events) <= set(APPLIED), events
    # Enrollments started in both API processes (their in-process workers ran them eagerly), and the surviving
    # worker process ran tasks too.
    worked = {identity_pid(identity) for identity in histories.identities}
    assert api_pids <= worked, (api_pids, histories.identities)
    assert survivor in worked, (survivor, histories.identities)
