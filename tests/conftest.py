"""The test harness: the real components, started once per test session on free ports.

PostgreSQL, the Temporal dev server, localstripe and the SMTP sink start once. Every test gets its own database
(cloned in milliseconds from a migrated template), its own Temporal task queue, and settings pointing at both;
``run_worker`` starts a real worker for it, and ``api`` talks to a real app (lifespan included) in-process.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import pkgutil
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import hypothesis.internal.conjecture
import hypothesis.strategies._internal
import pytest
import schemathesis
from alembic import command
from alembic.config import Config
from hypothesis import settings as hypothesis_settings
from sqlalchemy.ext.asyncio import AsyncEngine
from temporalio.client import Client
from temporalio.worker import Replayer, Worker

from api.main import create_app
from core.db import SessionFactory, create_engine, create_session_factory, transaction
from core.payload_keys import PayloadKeyring
from core.settings import Settings
from core.temporal import SEARCH_ATTRIBUTES, connect_temporal
from core.tokens import issue_access_token
from devstack.localstripe import LocalStripe
from devstack.ports import free_port
from devstack.postgres import EmbeddedPostgres
from devstack.smtp_sink import SmtpSink
from devstack.temporal import TemporalDevServer
from models import Role, User
from scripts.seed_demo import seed_demo, seed_reference_data
from tests.replay.recorder import record_runs, recording
from tests.worker_exit import running
from workers.main import build_deps, build_worker, workflow_runner
from workers.registry import WORKFLOWS, WorkerDeps
from workers.stripe_forwarder import StripeEventForwarder

REPO_ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DB = "cedar_template"
WEBHOOK_SECRET = "whsec_cedar_tests"


def pytest_collection_finish(session: pytest.Session) -> None:
    """Imports every module of schemathesis and of hypothesis's engine after collection, before any test starts a
    thread.

    Both are pytest plugins, so pytest rewrites their modules' asserts as they are imported, parsing each with
    ``ast``. Left to themselves they import lazily during tests, from the test's thread, while an app's lifespan
    thread may be importing too. CPython 3.11 keeps ``ast``'s recursion depth in interpreter-wide state, and a parse
    in the test's thread failed in CI with "AST constructor recursion depth mismatch" (see cpython#106905). Not at
    conftest import: hypothesis warns of plugins touching its storage while pytest initializes.
    """
    for package in (schemathesis, hypothesis.strategies._internal, hypothesis.internal.conjecture):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            # an optional extra that is not installed, e.g. schemathesis's Allure reporting
            with contextlib.suppress(ImportError):
                importlib.import_module(module.name)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With CEDAR_RECORD_HISTORIES=1, each test on the stack records its workflows' new paths (tests/replay)."""
    if recording():
        for item in items:
            names = getattr(item, "fixturenames", None)
            if names is not None and "make_settings" in names:
                names.append("record_histories")


@pytest.fixture
async def record_histories(
    make_settings: Callable[..., Settings], temporal_client: Client, request: pytest.FixtureRequest
) -> AsyncIterator[None]:
    yield
    replayer = Replayer(
        workflows=WORKFLOWS, workflow_runner=workflow_runner(), data_converter=temporal_client.data_converter
    )
    for case in await record_runs(temporal_client, make_settings(), replayer, request.node.nodeid):
        print(f"recorded {case}")


@pytest.fixture(scope="session")
def stack_dir() -> Iterator[Path]:
    # Not pytest's tmp_path: pytest prunes old basetemp folders, and a second pytest run on the same machine
    # would delete this run's live PostgreSQL data directory from under it.
    path = Path(tempfile.mkdtemp(prefix="cedar-stack-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres(stack_dir: Path) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(stack_dir / "pg", free_port(), log_dir=stack_dir / "logs", fast=True)
    server.start()
    yield server
    server.stop()


def migrate(url: str) -> None:
    config = Config(str(REPO_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    command.upgrade(config, "head")


@pytest.fixture(scope="session")
def template_db(postgres: EmbeddedPostgres) -> str:
    """A migrated database with the reference data (instruments, rates) every test starts from."""
    postgres.create_database(TEMPLATE_DB)
    migrate(postgres.url(TEMPLATE_DB))

    async def seed() -> None:
        engine = create_engine(Settings(), postgres.url(TEMPLATE_DB))
        async with transaction(create_session_factory(engine)) as session:
            await seed_reference_data(session, Settings())
        await engine.dispose()

    asyncio.run(seed())
    return TEMPLATE_DB


@pytest.fixture(scope="session")
def temporal_server(stack_dir: Path) -> Iterator[TemporalDevServer]:
    server = TemporalDevServer(
        free_port(),
        None,
        None,
        stack_dir / "logs",
        # Small histories suggest continue-as-new early, so tests exercise it.
        dynamic_config={"limit.historyCount.suggestContinueAsNew": "200"},
        search_attributes=SEARCH_ATTRIBUTES,
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def localstripe(stack_dir: Path) -> Iterator[LocalStripe]:
    server = LocalStripe(free_port(), stack_dir / "logs")
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp_sink(stack_dir: Path) -> Iterator[SmtpSink]:
    sink = SmtpSink(free_port(), free_port(), stack_dir / "mail", stack_dir / "logs")
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture
async def temporal_client(settings: Settings, sessions: SessionFactory, temporal_server: TemporalDevServer) -> Client:
    """This test's client: its codec keeps family data keys in this test's database, as the app's does."""
    return await connect_temporal(settings, temporal_server.address, keyring=PayloadKeyring(settings, sessions))


@pytest.fixture
def db_url(postgres: EmbeddedPostgres, template_db: str) -> Iterator[str]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    postgres.create_database(name, template=template_db)
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture
def make_settings(
    db_url: str, temporal_server: TemporalDevServer, localstripe: LocalStripe, smtp_sink: SmtpSink
) -> Callable[..., Settings]:
    """Settings for this test's database and task queue; keyword overrides shorten delays and the like."""
    task_queue = f"tq-{uuid.uuid4()}"

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "environment": "test",
            "database_url": db_url,
            "db_pool_size": 5,
            "temporal_address": temporal_server.address,
            "task_queue": task_queue,
            # One queue for everything, so the workers a test runs serve whatever it starts; the two queues of
            # production (enrollments apart) are tested in tests/enrollment/test_api_worker.py.
            "enrollment_task_queue": task_queue,
            "stripe_api_base": localstripe.api_base,
            "stripe_webhook_secrets": [WEBHOOK_SECRET],
            "smtp_port": smtp_sink.smtp_port,
            "smtp_timeout": timedelta(seconds=3),
            "log_level": "WARNING",
            # Tests choose their workers (run_worker), e.g. to stop one mid-workflow.
            "api_worker": False,
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(settings)
    yield engine
    await engine.dispose()


@pytest.fixture
def sessions(engine: AsyncEngine) -> SessionFactory:
    return create_session_factory(engine)


@pytest.fixture
async def demo_data(sessions: SessionFactory, settings: Settings) -> None:
    """The demo school (admin, three teachers with availability, this year's calendar) in this test's DB."""
    from datetime import datetime

    async with transaction(sessions) as session:
        await seed_demo(session, settings, datetime.now(settings.timezone).date())


@pytest.fixture
def worker_deps(settings: Settings, sessions: SessionFactory, temporal_client: Client) -> WorkerDeps:
    return build_deps(settings, sessions, temporal_client)


@pytest.fixture
def run_worker(temporal_client: Client, worker_deps: WorkerDeps) -> Callable[..., AbstractAsyncContextManager[Worker]]:
    """``async with run_worker():`` runs a real worker for this test's task queue (again after a stop)."""

    @asynccontextmanager
    async def run(deps: WorkerDeps | None = None) -> AsyncIterator[Worker]:
        deps = deps or worker_deps
        worker = build_worker(temporal_client, deps)
        # As in a worker process: the webhook's new events are handed over from here, not from the API.
        async with running(worker), StripeEventForwarder(deps.settings, deps.sessions, temporal_client).running():
            yield worker

    return run


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the real app, with its lifespan (engine, Temporal client) running."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as client:
            yield client


@pytest.fixture
def auth_headers(sessions: SessionFactory, settings: Settings) -> Callable[..., Any]:
    """``await auth_headers(Role.admin)`` → headers with a bearer token for a fresh user of that role.

    Pass ``user_id=`` to sign in as an existing user (a parent or teacher row's ``user_id``).
    """

    async def make(role: Role, user_id: uuid.UUID | None = None, email: str | None = None) -> dict[str, str]:
        if user_id is None:
            email = email or f"{role}-{uuid.uuid4().hex[:8]}@cedar.test"
            async with transaction(sessions) as session:
                created = User(email=email, role=role)
                session.add(created)
            user_id = created.id
        async with sessions() as session:
            user = await session.get(User, user_id)
            assert user is not None
        token = issue_access_token(settings, user.id, user.email, user.role)
        return {"Authorization": f"Bearer {token}"}

    return make


# CI runs the same examples every time (a red build must be reproducible); locally hypothesis keeps exploring.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")
