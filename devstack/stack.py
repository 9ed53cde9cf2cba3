"""The whole local system for `./cedar run`: which components, their ports, and the start-up sequence."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from core.settings import Settings
from core.temporal import SEARCH_ATTRIBUTES, connect_temporal
from devstack.localstripe import LocalStripe
from devstack.ports import ensure_port_free
from devstack.postgres import EmbeddedPostgres
from devstack.processes import ManagedProcess, log_tail
from devstack.smtp_sink import SmtpSink
from devstack.supervisor import Supervisor
from devstack.temporal import TemporalDevServer

REPO_ROOT = Path(__file__).resolve().parent.parent
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


class StartupError(RuntimeError):
    pass


@dataclass
class Stack:
    """What `./cedar run` starts, derived from settings: a component configured to an external service
    (CEDAR_DATABASE_URL, CEDAR_TEMPORAL_ADDRESS, CEDAR_STRIPE_API_BASE, a remote CEDAR_SMTP_HOST) is not
    started here."""

    settings: Settings
    data_dir: Path
    postgres: EmbeddedPostgres | None
    temporal: TemporalDevServer | None
    stripe: LocalStripe | None
    mail: SmtpSink | None
    api: ManagedProcess | None = None
    worker: ManagedProcess | None = None
    # Every worker process; the first is also ``worker`` (its log and pid file keep that name).
    workers: tuple[ManagedProcess, ...] = ()

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def database_url(self) -> str:
        if self.postgres is not None:
            return self.postgres.url(self.settings.database_name)
        assert self.settings.database_url is not None
        return self.settings.database_url

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.api_port}"


def plan(settings: Settings) -> Stack:
    data_dir = settings.data_dir if settings.data_dir.is_absolute() else REPO_ROOT / settings.data_dir
    logs, host = data_dir / "logs", settings.host
    return Stack(
        settings=settings,
        data_dir=data_dir,
        postgres=None
        if settings.database_url
        else EmbeddedPostgres(data_dir / "postgres", settings.postgres_port, host, logs),
        temporal=None
        if settings.temporal_address
        else TemporalDevServer(
            settings.temporal_port,
            settings.temporal_ui_port,
            data_dir / "temporal.db",
            logs,
            search_attributes=SEARCH_ATTRIBUTES,
            host=host,
            namespace=settings.temporal_namespace,
            ui_codec_endpoint=f"http://{host}:{settings.api_port}/codec",
        ),
        stripe=None
        if settings.stripe_api_base is not None
        else LocalStripe(settings.stripe_port, logs, data_dir / "stripe.pickle", host=host),
        mail=None
        if settings.smtp_host not in LOCAL_HOSTS
        else SmtpSink(settings.smtp_port, settings.mail_http_port, data_dir / "mail", logs, host=host),
    )


def check_ports(stack: Stack) -> None:
    """Every port we will bind, before anything starts: fail with the setting to change, not mid-way."""
    s = stack.settings
    wanted = [(s.api_port, "API, CEDAR_API_PORT")]
    if stack.postgres:
        wanted.append((s.postgres_port, "PostgreSQL, CEDAR_POSTGRES_PORT"))
    if stack.temporal:
        wanted += [(s.temporal_port, "Temporal, CEDAR_TEMPORAL_PORT")]
        wanted += [(s.temporal_ui_port, "Temporal UI, CEDAR_TEMPORAL_UI_PORT")]
    if stack.stripe:
        wanted.append((s.stripe_port, "localstripe, CEDAR_STRIPE_PORT"))
    if stack.mail:
        wanted += [(s.smtp_port, "SMTP sink, CEDAR_SMTP_PORT"), (s.mail_http_port, "mail page, CEDAR_MAIL_HTTP_PORT")]
    for port, what in wanted:
        ensure_port_free(port, what, s.host)


def app_env(stack: Stack) -> dict[str, str]:
    """Environment for migrations, the demo loader, the API and the worker: the components just started."""
    env = {"CEDAR_DATABASE_URL": stack.database_url, "PYTHONUNBUFFERED": "1", "CEDAR_DATA_DIR": str(stack.data_dir)}
    if stack.temporal:
        env["CEDAR_TEMPORAL_ADDRESS"] = stack.temporal.address
    if stack.stripe:
        env["CEDAR_STRIPE_API_BASE"] = stack.stripe.api_base
    if stack.mail:
        env.update(CEDAR_SMTP_HOST=stack.mail.host, CEDAR_SMTP_PORT=str(stack.mail.smtp_port))
    # As in production: billing's Stripe calls on their own rate-limited queue.
    env["CEDAR_STRIPE_TASK_QUEUE"] = stack.settings.stripe_task_queue or f"{stack.settings.task_queue}-stripe"
    return env


def run_step(stack: Stack, name: str, args: list[str]) -> None:
    """A one-shot command (migrations, demo data), output to its log; a failure stops the start-up."""
    log_path = stack.log_dir / f"{name}.log"
    with open(log_path, "ab") as log:
        result = subprocess.run(
            [sys.executable, *args], cwd=REPO_ROOT, env=_env(stack), stdout=log, stderr=subprocess.STDOUT
        )
    if result.returncode != 0:
        raise StartupError(f"{name} failed (exit {result.returncode}); log: {log_path}\n{log_tail(log_path)}")


def _env(stack: Stack) -> dict[str, str]:
    return {**os.environ, **app_env(stack)}


def worker_polling(address: str, namespace: str, task_queue: str, settings: Settings | None = None) -> bool:
    """True once some worker polls `task_queue` (for workflow or activity tasks): it is really serving."""
    from temporalio.api.enums.v1 import TaskQueueType
    from temporalio.api.taskqueue.v1 import TaskQueue
    from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

    async def probe() -> bool:
        # The app's own TLS and API key settings, so an external Temporal (CEDAR_TEMPORAL_ADDRESS) is reached too.
        access_settings = settings or Settings(temporal_namespace=namespace)
        client = await connect_temporal(access_settings, address)
        for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
            request = DescribeTaskQueueRequest(
                namespace=namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=kind
            )
            if (await client.workflow_service.describe_task_queue(request)).pollers:
                return True
        return False

    return asyncio.run(probe())


def _say(message: str) -> None:
    print(f"  {message}", flush=True)


def start(stack: Stack, supervisor: Supervisor) -> None:
    """Start everything in dependency order. Slow servers boot in the background while PostgreSQL,
    migrations and demo data run; every started process is registered with the supervisor at once, so a
    failure or Ctrl-C half-way still stops what is up."""
    stack.log_dir.mkdir(parents=True, exist_ok=True)
    background = [c for c in (stack.temporal, stack.stripe, stack.mail) if c is not None]
    for component in background:
        restart = _restart_localstripe(stack) if component is stack.stripe else None
        supervisor.start(component.process, restart)
    if stack.postgres:
        _say("PostgreSQL...")
        supervisor.add(stack.postgres.process, stack.postgres.restart)
        stack.postgres.start()
        stack.postgres.create_database(stack.settings.database_name)
    _say("migrations...")
    run_step(stack, "migrations", ["-m", "alembic", "upgrade", "head"])
    _say("demo data...")
    run_step(stack, "seed-demo", ["-m", "scripts.seed_demo"])
    for component in background:
        _say(f"{component.process.name}...")
        component.wait_ready()
    if stack.stripe:
        register_webhook(stack)
    run_step(stack, "schedules", ["-m", "workers.schedules"])  # as a deploy does: once, not at every worker start
    _say("API and worker...")
    python = sys.executable
    s = stack.settings
    api = ["-m", "api.serve", "--host", s.host, "--port", str(s.api_port), "--processes", str(s.api_processes)]
    stack.api = ManagedProcess("api", [python, *api], stack.log_dir, env=app_env(stack), cwd=REPO_ROOT)
    stack.workers = tuple(
        ManagedProcess(name, [python, "-m", "workers.main"], stack.log_dir, env=app_env(stack), cwd=REPO_ROOT)
        for name in worker_names(s.worker_processes)
    )
    stack.worker = stack.workers[0]
    supervisor.start(stack.api)
    for worker in stack.workers:
        supervisor.start(worker)
    stack.api.wait_ready(lambda: httpx.get(f"{stack.api_url}/health", timeout=2).status_code == 200)
    address = stack.temporal.address if stack.temporal else s.effective_temporal_address
    for worker in stack.workers:
        worker.wait_ready(lambda: worker_polling(address, s.temporal_namespace, s.task_queue, s), interval=0.3)


def worker_names(count: int) -> list[str]:
    """``worker``, then ``worker-2``, ``worker-3``...: the supervisor's, logs' and pid files' names."""
    return ["worker", *(f"worker-{n}" for n in range(2, count + 1))]


def register_webhook(stack: Stack) -> None:
    assert stack.stripe is not None
    stack.stripe.register_webhook(f"{stack.api_url}/api/v1/webhooks/stripe", stack.settings.stripe_webhook_secrets[0])


def _restart_localstripe(stack: Stack) -> Callable[[], None]:
    """localstripe forgets its webhooks when it stops: a restart registers ours again."""

    def restart() -> None:
        assert stack.stripe is not None
        stack.stripe.start()
        register_webhook(stack)

    return restart


def banner(stack: Stack, seconds: float) -> str:
    s = stack.settings
    rows = [
        ("API", stack.api_url),
        ("API docs", f"{stack.api_url}/docs"),
        ("Family pages", f"{stack.api_url}/sign-in"),
        ("Health", f"{stack.api_url}/health"),
    ]
    if stack.temporal:
        rows.append(("Temporal UI", f"{stack.temporal.ui_url}   (gRPC {stack.temporal.address})"))
    if stack.mail:
        rows.append(("Mail", f"{stack.mail.http_url}   (SMTP {stack.mail.host}:{stack.mail.smtp_port})"))
    if stack.stripe:
        rows.append(("Stripe (fake)", stack.stripe.api_base))
    rows.append(("PostgreSQL", stack.database_url.split("@")[-1]))
    rows += [("Demo admin", f"{s.demo_admin_email} / {s.demo_admin_password}"), ("Logs", str(stack.log_dir))]
    width = max(len(label) for label, _ in rows)
    lines = [f"  {label.ljust(width)}  {value}" for label, value in rows]
    return "\n".join([f"\nCedar is up ({seconds:.1f} s). Ctrl-C stops everything.\n", *lines, ""])
