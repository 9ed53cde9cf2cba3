"""The restore drill: a family with an active enrollment and a paid invoice, backed up with ``scripts.backup``,
restored into a fresh PostgreSQL, and the family's running billing workflow driven one step further against the
restored database (Temporal's own state is untouched: it has its own backups, docs/deploy.md)."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import func, select
from sqlmodel import col
from temporalio.client import Client
from temporalio.worker import Worker

from api.main import create_app
from core.db import SessionFactory, create_engine, create_session_factory
from core.settings import Settings
from core.stripe import create_stripe_client
from devstack.localstripe import LocalStripe
from devstack.ports import free_port
from devstack.postgres import EmbeddedPostgres
from models import Enrollment, Invoice, Payment, Posting, Role
from scripts import backup
from tests.billing.conftest import WEBHOOK_ID, billed_family, ledger_problems
from tests.waiting import eventually
from workers.main import build_deps


@pytest.fixture
def fresh_postgres() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL of its own (data directory, port), empty, as on a replacement machine."""
    path = Path(tempfile.mkdtemp(prefix="cedar-restore-"))
    server = EmbeddedPostgres(path / "pg", free_port(), log_dir=path / "logs", fast=True)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(path, ignore_errors=True)


@asynccontextmanager
async def served(settings: Settings, localstripe: LocalStripe) -> AsyncIterator[httpx.AsyncClient]:
    """The real app over HTTP (localstripe posts its webhooks to it), with a client on it."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool:
        return server.started

    await eventually(started, timeout=10, what="uvicorn")
    base = f"http://127.0.0.1:{port}"
    localstripe.register_webhook(f"{base}/api/v1/webhooks/stripe", settings.stripe_webhook_secrets[0], WEBHOOK_ID)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        await task


async def balances(sessions: SessionFactory) -> dict[str, int]:
    """The trial balance: every ledger account's balance."""
    async with sessions() as session:
        rows = await session.execute(
            select(col(Posting.account_code), func.sum(col(Posting.amount_minor))).group_by(col(Posting.account_code))
        )
        return {code: int(total) for code, total in rows.all()}


async def count(sessions: SessionFactory, model: Any, *where: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def renew(api: httpx.AsyncClient, subscription_id: object, admin: dict[str, str]) -> None:
    renewal = await api.post(f"/api/v1/billing/subscriptions/{subscription_id}/renewals", headers=admin)
    assert renewal.status_code == 201, renewal.text
    assert renewal.json()["status"] == "paid", renewal.text


async def test_a_backup_restores_into_a_fresh_postgres_and_the_running_workflows_resume_on_it(
    settings: Settings,
    make_settings: Callable[..., Settings],
    sessions: SessionFactory,
    temporal_client: Client,
    localstripe: LocalStripe,
    run_worker: Callable[..., AbstractAsyncContextManager[Worker]],
    auth_headers: Callable[..., Any],
    fresh_postgres: EmbeddedPostgres,
    tmp_path: Path,
) -> None:
    admin = await auth_headers(Role.admin)
    stripe_client = create_stripe_client(settings)
    async with run_worker(), served(settings, localstripe) as api:
        billed = await billed_family(sessions, settings, temporal_client, stripe_client)
        await renew(api, billed.subscription.id, admin)
        await eventually(
            lambda: count(sessions, Payment, col(Payment.status) == "succeeded"), what="the first payment recorded"
        )
    # The stack is down (the API and workers stopped; PostgreSQL and Temporal still up): back up, restore elsewhere.
    source_counts = backup.row_counts(settings.effective_database_url)
    dump = backup.dump(settings.effective_database_url, tmp_path / "cedar.dump")
    assert dump.stat().st_size > 0
    fresh_postgres.create_database("cedar")
    restored_url = fresh_postgres.url("cedar")
    backup.restore(restored_url, dump)

    restored_counts = backup.row_counts(restored_url)
    assert restored_counts == source_counts
    assert source_counts["enrollments"] >= 1
    assert source_counts["payments"] == 1
    assert source_counts["alembic_version"] == 1
    with pytest.raises(backup.BackupError, match="empty database"):
        backup.restore(restored_url, dump)

    restored_settings = make_settings(database_url=restored_url)
    engine = create_engine(restored_settings)
    restored = create_session_factory(engine)
    try:
        assert await ledger_problems(restored) == {}  # every entry balanced, the trial balance's total zero
        assert await balances(restored) == await balances(sessions)
        assert await count(restored, Enrollment, col(Enrollment.state) == "active") == 1
        assert await count(restored, Invoice, col(Invoice.status) == "paid") == 1

        # The family's billing workflow, still running in Temporal, renews against the restored database.
        deps = build_deps(restored_settings, restored, temporal_client)
        async with run_worker(deps), served(restored_settings, localstripe) as api:
            await renew(api, billed.subscription.id, admin)
            await eventually(
                lambda: count(restored, Payment, col(Payment.status) == "succeeded"),
                until=lambda paid: paid == 2,
                what="the renewal paid in the restored database",
            )
            await eventually(
                lambda: count(restored, Invoice, col(Invoice.status) == "paid"),
                until=lambda paid: paid == 2,
                what="both invoices paid in the restored database",
            )
        assert await ledger_problems(restored) == {}
        assert await count(sessions, Payment) == 1  # the old database saw nothing of it
    finally:
        await engine.dispose()
