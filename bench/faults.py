"""Fault suite: ``.venv/bin/python -m bench.faults --own-stack [--families 6] [--fault NAME|all] [--window 30]
[--outage 30]``.

Drives enrollments through the API of a running ``./cedar run`` (``--own-stack``: a fresh one, started as
``python -m devstack run`` in a temporary directory on free ports, stopped after) while it injects faults, one at a
time and then (with ``--fault all``) together: ``kill -9`` of the worker and of an API process, a crash restart of
PostgreSQL and of the Temporal server (``kill -9``; their data stays), localstripe and the mail sink held down for
``--outage`` seconds, and the webhook's events delivered again (each twice, shuffled, some late). The supervisor of
``./cedar run`` restarts what is killed; an outage is asked of it (``devstack.supervisor.hold``).

Clients retry as real ones do: a POST that got no answer or a 5xx goes again with the same ``Idempotency-Key``.
``--families`` of the enrollments are taken on to active (demo outcome ``continue``) and billing: a renewal paid,
every third one declined (its card changed to a decline card first).

At the end it waits for the system to settle, then checks: every accepted enrollment reached its state; every
invoice paid at most once, each payment in the ledger once; every email sent exactly once by its dedup key (the
mail sink's messages against ``communications``); the trial balance zero; no workflow stuck (each open one waits
on a timer, an activity, a child or a signal its type expects). It prints, per fault, the time from the fault to
the first enrollment completed after it (reaching ``demo_scheduled``) and the enrollments per second across the
fault's window beside the same figure for a window without faults in the same run. It exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from bench.enrollment import add_bench_teachers, application
from core.contracts.billing import FAMILY_BILLING_WORKFLOW
from core.contracts.dunning import FAMILY_DUNNING_WORKFLOW
from core.db import create_session_factory, to_asyncpg_url
from core.settings import Settings
from core.temporal import connect_temporal
from devstack.ports import free_port
from devstack.stack import REPO_ROOT
from devstack.supervisor import hold, read_status, release
from models import Communication, Enrollment, Invoice, JournalEntry, Payment, Posting, StripeEvent, Subscription

FAULTS = ("kill-worker", "kill-api", "restart-postgres", "restart-temporal", "stripe-down", "mail-down", "webhooks")
FINAL_STATES = {"failed", "cancelled", "withdrawn", "completed"}
DECLINE_CARD = "4000000000000341"  # attaches, then every charge fails
# Workflows that wait for signals and updates for as long as the family exists.
ENTITY_WORKFLOWS = {FAMILY_BILLING_WORKFLOW, FAMILY_DUNNING_WORKFLOW}
PORT_SETTINGS = (
    "CEDAR_API_PORT",
    "CEDAR_POSTGRES_PORT",
    "CEDAR_TEMPORAL_PORT",
    "CEDAR_TEMPORAL_UI_PORT",
    "CEDAR_STRIPE_PORT",
    "CEDAR_SMTP_PORT",
    "CEDAR_MAIL_HTTP_PORT",
)


class SuiteFailed(AssertionError):
    """A check failed; the message lists every failure."""


# --- the running stack -------------------------------------------------------------------------------------------


class CedarRun:
    """``python -m devstack run`` as a child of this process (``own``), or the one already running (default
    settings); faults go through its supervisor and its children's pid files."""

    def __init__(self, settings: Settings, data_dir: Path, process: subprocess.Popen[str] | None = None) -> None:
        self.settings = settings
        self.data_dir = data_dir
        self.process = process
        self.output: list[str] = []

    @classmethod
    def own(
        cls,
        directory: Path,
        api_processes: int,
        startup_timeout: float = 180.0,
        worker_processes: int = 1,
        extra_env: dict[str, str] | None = None,
    ) -> CedarRun:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CEDAR_") and k != "DATABASE_URL"}
        env.update({name: str(free_port()) for name in PORT_SETTINGS})
        env.update(
            CEDAR_DATA_DIR=str(directory),
            CEDAR_API_PROCESSES=str(api_processes),
            CEDAR_WORKER_PROCESSES=str(worker_processes),
            CEDAR_LOG_LEVEL="WARNING",
            # Every POST comes from this one address, and the suite makes many.
            CEDAR_ENROLLMENT_RATE_LIMIT_PER_HOUR_IP="100000",
        )
        env.update(extra_env or {})
        process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "run"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        values: dict[str, Any] = {
            # A list or mapping is JSON in the environment, as pydantic-settings reads it there.
            k.removeprefix("CEDAR_").lower(): json.loads(v) if v[:1] in "[{" and v else v
            for k, v in env.items()
            if k.startswith("CEDAR_")
        }
        settings = Settings(**values)
        run = cls(settings, directory, process)
        up = threading.Event()
        threading.Thread(target=run._read_output, args=(up,), daemon=True).start()
        if not up.wait(startup_timeout) or process.poll() is not None:
            run.stop()
            raise RuntimeError("./cedar run did not come up:\n" + "".join(run.output[-40:]))
        return run

    @classmethod
    def existing(cls) -> CedarRun:
        settings = Settings()
        data_dir = settings.data_dir if settings.data_dir.is_absolute() else REPO_ROOT / settings.data_dir
        return cls(settings, data_dir)

    def _read_output(self, up: threading.Event) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if "Cedar is up" in line:
                up.set()
        up.set()

    @property
    def api_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.api_port}"

    @property
    def database_url(self) -> str:
        return self.settings.database_url or (
            f"postgresql://postgres@{self.settings.host}:{self.settings.postgres_port}/{self.settings.database_name}"
        )

    @property
    def temporal_address(self) -> str:
        return self.settings.temporal_address or f"{self.settings.host}:{self.settings.temporal_port}"

    @property
    def mail_url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.mail_http_port}"

    @property
    def stripe_url(self) -> str:
        return self.settings.stripe_api_base or f"http://{self.settings.host}:{self.settings.stripe_port}"

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    def pid(self, name: str) -> int:
        return int(json.loads((self.data_dir / "logs" / f"{name}.pid").read_text())["pid"])

    def api_processes(self) -> list[int]:
        """The uvicorn processes under ``api.serve`` (not multiprocessing's resource tracker)."""
        launcher = self.pid("api")
        children = Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split()
        return [int(p) for p in children if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]

    def restarts(self) -> dict[str, int]:
        status = read_status(self.run_dir) or {}
        return {name: child["restarts"] for name, child in status.get("children", {}).items()}

    def state(self, name: str) -> str | None:
        status = read_status(self.run_dir) or {}
        child = status.get("children", {}).get(name)
        return None if child is None else str(child["state"])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the load ----------------------------------------------------------------------------------------------------


@dataclass
class Tally:
    """What the clients saw."""

    accepted: dict[str, str] = field(default_factory=dict)  # enrollment id -> the state it must reach
    posts: int = 0
    post_retries: int = 0
    families: int = 0
    renewals: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


class Clients:
    """Closed-loop clients of the public form, and the office taking some families on to billing."""

    def __init__(self, run: CedarRun, concurrency: int, families: int) -> None:
        self.run = run
        self.concurrency = concurrency
        self.families = families
        self.tally = Tally()
        self.stopping = asyncio.Event()
        self.http = httpx.AsyncClient(base_url=run.api_url, timeout=15)
        # Pinged before each use: the suite's own connections outlive a restart of PostgreSQL.
        self.engine = create_async_engine(to_asyncpg_url(run.database_url), pool_pre_ping=True)
        self.sessions = create_session_factory(self.engine)
        self._token: str | None = None
        self._family_tasks: list[asyncio.Task[None]] = []
        self._number = 0

    async def close(self) -> None:
        await self.http.aclose()
        await self.engine.dispose()

    async def _retrying(
        self, send: Callable[[], Awaitable[httpx.Response]], ok: Callable[[httpx.Response], bool], timeout: float = 240
    ) -> httpx.Response:
        """Again on no answer, a 5xx or a 429, as a client with an idempotency key does."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                response = await send()
                if ok(response):
                    return response
                if response.status_code < 500 and response.status_code != 429:
                    raise RuntimeError(f"{response.status_code} {response.text[:300]}")
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("no answer in time")
            self.tally.post_retries += 1
            await asyncio.sleep(0.5)

    async def _admin(self) -> dict[str, str]:
        if self._token is None:
            s = self.run.settings
            response = await self._retrying(
                lambda: self.http.post(
                    "/api/v1/auth/login", json={"email": s.demo_admin_email, "password": s.demo_admin_password}
                ),
                lambda r: r.status_code == 200,
            )
            self._token = response.json()["access_token"]
        return {"Authorization": f"Bearer {self._token}"}

    async def _as_admin(
        self, method: str, path: str, ok: Callable[[httpx.Response], bool], **kw: Any
    ) -> httpx.Response:
        async def send() -> httpx.Response:
            response = await self.http.request(method, path, headers=await self._admin(), **kw)
            if response.status_code == 401:
                self._token = None  # expired: sign in again
            return response

        return await self._retrying(send, lambda r: r.status_code != 401 and ok(r))

    async def _state(self, enrollment_id: str) -> str | None:
        try:
            response = await self.http.get(f"/api/v1/enrollments/{enrollment_id}")
        except httpx.TransportError:
            return None
        return str(response.json()["state"]) if response.status_code == 200 else None

    async def _until_state(self, enrollment_id: str, states: set[str], timeout: float = 120) -> str | None:
        """The state once it is one of `states` or final; None when it is neither by the deadline (the checks at
        the end say what became of it)."""
        deadline = time.monotonic() + timeout
        while (state := await self._state(enrollment_id)) not in states | FINAL_STATES:
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.2)
        return state

    async def enroll(self) -> str:
        self._number += 1
        key, body = str(uuid.uuid4()), application(self._number)
        self.tally.posts += 1
        response = await self._retrying(
            lambda: self.http.post("/api/v1/enrollments", json=body, headers={"Idempotency-Key": key}),
            lambda r: r.status_code == 202,
        )
        enrollment_id = str(response.json()["enrollment_id"])
        self.tally.accepted[enrollment_id] = "demo_scheduled"
        return enrollment_id

    async def client(self) -> None:
        while not self.stopping.is_set():
            try:
                enrollment_id = await self.enroll()
                if await self._until_state(enrollment_id, {"demo_scheduled"}) != "demo_scheduled":
                    continue
                if self.tally.families < self.families and self._number % 2 == 0:
                    self.tally.families += 1
                    self.tally.accepted[enrollment_id] = "active"
                    decline = self.tally.families % 3 == 0
                    self._family_tasks.append(asyncio.create_task(self.family(enrollment_id, decline)))
            except Exception as error:  # noted, and the check at the end names it
                self.tally.errors.append(f"client: {type(error).__name__}: {error}")

    async def family(self, enrollment_id: str, decline: bool) -> None:
        """The demo went well: continue, then bill a month (declined for some)."""
        try:
            await self._as_admin(
                "POST",
                f"/api/v1/enrollments/{enrollment_id}/demo-outcome",
                lambda r: r.status_code < 300 or r.status_code == 409,
                json={"outcome": "continue"},
            )
            if await self._until_state(enrollment_id, {"active"}) != "active":
                return
            subscription_id, parent_id = await self._subscription(enrollment_id)
            if decline:
                method = await self._card(DECLINE_CARD)
                await self._as_admin(
                    "PUT",
                    f"/api/v1/billing/families/{parent_id}/card",
                    lambda r: r.status_code == 200,
                    json={"payment_method_id": method},
                )
            # Not retried: a renewal whose answer was lost may have billed the month, and a second would bill the
            # next (the checks hold either way).
            response = await self.http.post(
                f"/api/v1/billing/subscriptions/{subscription_id}/renewals", headers=await self._admin()
            )
            outcome = response.json().get("status", "?") if response.status_code == 201 else str(response.status_code)
            self.tally.renewals[f"{'declined card' if decline else 'card'}: {outcome}"] += 1
        except Exception as error:
            self.tally.errors.append(f"family {enrollment_id}: {type(error).__name__}: {error}")

    async def _subscription(self, enrollment_id: str, timeout: float = 180) -> tuple[uuid.UUID, uuid.UUID]:
        deadline = time.monotonic() + timeout
        while True:
            with contextlib.suppress(Exception):  # the database may be restarting
                async with self.sessions() as session:
                    row = (
                        await session.execute(
                            select(col(Subscription.id), col(Enrollment.parent_id))
                            .join(Enrollment, col(Enrollment.id) == col(Subscription.enrollment_id))
                            .where(col(Subscription.enrollment_id) == uuid.UUID(enrollment_id))
                            .where(col(Subscription.stripe_subscription_id).is_not(None))
                        )
                    ).first()
                if row is not None and row[1] is not None:
                    return row[0], row[1]
            if time.monotonic() > deadline:
                raise TimeoutError(f"no subscription for enrollment {enrollment_id}")
            await asyncio.sleep(0.5)

    async def _card(self, number: str) -> str:
        auth = (self.run.settings.stripe_api_key, "")
        data = {"type": "card", "card[number]": number, "card[exp_month]": "12", "card[exp_year]": "2031"}
        data["card[cvc]"] = "123"

        async def send() -> httpx.Response:
            return await self.http.post(f"{self.run.stripe_url}/v1/payment_methods", data=data, auth=auth)

        response = await self._retrying(send, lambda r: r.status_code == 200)
        return str(response.json()["id"])

    async def drive(self) -> None:
        await asyncio.gather(*(self.client() for _ in range(self.concurrency)))

    async def settle(self) -> None:
        """Every family's flow has ended (the clients have stopped)."""
        await asyncio.gather(*self._family_tasks)


# --- faults ------------------------------------------------------------------------------------------------------


@dataclass
class Injected:
    name: str
    at: float  # time.time()
    window: float


def _quietly(probe: Callable[[], list[int]]) -> list[int]:
    try:
        return probe()
    except (OSError, ValueError):  # a process file gone between two reads
        return []


async def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def replay_webhooks(run: CedarRun, sessions: Any, count: int = 40) -> int:
    """The webhook's stored events posted again, each twice, shuffled, some late, with valid signatures."""
    payloads: list[dict[str, Any]] = []
    for _ in range(120):  # PostgreSQL may be restarting too
        try:
            async with sessions() as session:
                payloads = list(
                    await session.scalars(
                        select(col(StripeEvent.payload))
                        .where(col(StripeEvent.source) == "webhook")
                        .order_by(col(StripeEvent.received_at).desc())
                        .limit(count)
                    )
                )
            break
        except Exception:
            await asyncio.sleep(0.5)
    deliveries = [p for p in payloads for _ in range(2)]
    random.shuffle(deliveries)
    secret = run.settings.stripe_webhook_secrets[0]

    async def deliver(http: httpx.AsyncClient, payload: dict[str, Any], delay: float) -> None:
        await asyncio.sleep(delay)
        body = json.dumps(payload).encode()
        stamp = int(time.time())
        digest = hmac.new(secret.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
        headers = {"Stripe-Signature": f"t={stamp},v1={digest}", "Content-Type": "application/json"}
        for _ in range(40):  # the endpoint may be restarting too
            with contextlib.suppress(httpx.TransportError):
                if (await http.post("/api/v1/webhooks/stripe", content=body, headers=headers)).status_code < 300:
                    return
            await asyncio.sleep(0.5)

    async with httpx.AsyncClient(base_url=run.api_url, timeout=15) as http:
        await asyncio.gather(*(deliver(http, p, random.choice((0, 0, 0.5, 2, 5))) for p in deliveries))
    return len(deliveries)


async def inject(name: str, run: CedarRun, clients: Clients, outage: float) -> Callable[[], Awaitable[None]]:
    """Start fault `name`; returns what ends it (releases a held child, awaits the replay)."""
    before = run.restarts()

    async def restarted(child: str) -> None:
        await _until(lambda: run.restarts().get(child, 0) > before.get(child, 0), 60, f"{child} restarted")
        await _until(lambda: run.state(child) == "running", 60, f"{child} running")

    async def nothing() -> None:
        return None

    if name in ("kill-worker", "restart-postgres", "restart-temporal"):
        child = {"kill-worker": "worker", "restart-postgres": "postgres", "restart-temporal": "temporal"}[name]
        await _until(lambda: run.state(child) == "running", 60, f"{child} running before its fault")
        os.kill(run.pid(child), signal.SIGKILL)
        return lambda: restarted(child)
    if name == "kill-api":
        await _until(lambda: run.state("api") == "running", 60, "api running before its fault")
        await _until(lambda: bool(_quietly(run.api_processes)), 60, "api processes serving")
        os.kill(random.choice(run.api_processes()), signal.SIGKILL)
        return lambda: restarted("api")
    if name in ("stripe-down", "mail-down"):
        child = "localstripe" if name == "stripe-down" else "smtp-sink"
        hold(run.run_dir, child)
        await _until(lambda: run.state(child) == "held", 30, f"{child} held")
        held_at = time.monotonic()

        async def back() -> None:
            await asyncio.sleep(max(0.0, outage - (time.monotonic() - held_at)))
            release(run.run_dir, child)
            await _until(lambda: run.state(child) == "running", 60, f"{child} back")

        return back
    if name == "webhooks":
        task = asyncio.create_task(replay_webhooks(run, clients.sessions))

        async def replayed() -> None:
            await task

        return replayed
    return nothing


# --- checks ------------------------------------------------------------------------------------------------------


async def _wait_settled(clients: Clients, timeout: float) -> None:
    """Until every accepted enrollment is in its state, no email waits for a retry and every webhook event is
    acted on (or the timeout: the checks then say what is missing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            async with clients.sessions() as session:
                states = {
                    str(i): s
                    for i, s in await session.execute(
                        select(col(Enrollment.id), col(Enrollment.state)).where(
                            col(Enrollment.id).in_([uuid.UUID(i) for i in clients.tally.accepted])
                        )
                    )
                }
                unsent = await session.scalar(
                    select(func.count()).where(col(Communication.status).in_(("pending", "failed")))
                )
                unprocessed = await session.scalar(
                    select(func.count()).where(col(StripeEvent.status).in_(("received", "failed")))
                )
                rows = set(await session.scalars(select(col(Communication.dedup_key))))
            # A message the SMTP server took just before a crash rolled its row back is sent again by the retry,
            # which may still be waiting out its backoff: settled once every delivered message has its row.
            messages = (await clients.http.get(f"{clients.run.mail_url}/api/messages", timeout=30)).json()
            delivered = {m["headers"].get("X-Cedar-Dedup-Key", "").strip() for m in messages} - {""}
            if (
                all(states.get(i) in {want, *FINAL_STATES} for i, want in clients.tally.accepted.items())
                and unsent == 0
                and unprocessed == 0
                and delivered <= rows
            ):
                return
        await asyncio.sleep(1)


async def check(run: CedarRun, clients: Clients, client: Client, out: Callable[[str], None] = print) -> list[str]:
    failures = [f"client error: {e}" for e in clients.tally.errors]
    async with clients.sessions() as session:
        ids = [uuid.UUID(i) for i in clients.tally.accepted]
        found = {
            str(i): (s, reason)
            for i, s, reason in await session.execute(
                select(col(Enrollment.id), col(Enrollment.state), col(Enrollment.failure_reason)).where(
                    col(Enrollment.id).in_(ids)
                )
            )
        }
        for enrollment_id, want in clients.tally.accepted.items():
            state, reason = found.get(enrollment_id, (None, None))
            if state != want:
                why = f" ({reason})" if reason else ""
                failures.append(f"enrollment {enrollment_id} is {state}, not {want}{why}")

        paid_twice = list(
            await session.execute(
                select(col(Payment.invoice_id), func.count())
                .where(col(Payment.invoice_id).is_not(None), col(Payment.status) != "failed")
                .group_by(col(Payment.invoice_id))
                .having(func.count() > 1)
            )
        )
        failures += [f"invoice {i} has {n} payments" for i, n in paid_twice]
        overpaid = await session.scalars(
            select(col(Invoice.stripe_invoice_id)).where(col(Invoice.amount_paid_minor) > col(Invoice.amount_due_minor))
        )
        failures += [f"invoice {i} paid more than due" for i in overpaid]
        # Failed charges have rows too (declines); only a succeeded one is money in the ledger.
        succeeded = select(col(Payment.stripe_charge_id)).where(col(Payment.status) != "failed")
        charges = [c for c in await session.scalars(succeeded) if c]
        entries = Counter(
            key.removeprefix("payment_received:")
            for key in await session.scalars(
                select(col(JournalEntry.idempotency_key)).where(col(JournalEntry.kind) == "payment_received")
            )
        )
        failures += [f"payment {c} is in the ledger {entries[c]} times" for c in charges if entries[c] != 1]
        failures += [f"ledger payment {c} has no payment row" for c in entries if c not in set(charges)]
        total = await session.scalar(select(func.coalesce(func.sum(col(Posting.amount_minor)), 0)))
        if total != 0:
            failures.append(f"the trial balance is off by {total}")

        communications = list(await session.execute(select(col(Communication.dedup_key), col(Communication.status))))
    # The header arrives folded (a leading space): the key is what is left once stripped. SMTP has no idempotency:
    # a worker killed after the server accepted a message and before its row said so sends it again, with the same
    # Message-ID (core/mail.py), which the recipient's mailbox shows once. So an email counts once per Message-ID;
    # the extra deliveries are reported, not hidden.
    delivered = [
        (m["headers"]["X-Cedar-Dedup-Key"].strip(), m["headers"].get("Message-ID", "").strip())
        for m in (await clients.http.get(f"{run.mail_url}/api/messages", timeout=30)).json()
        if m["headers"].get("X-Cedar-Dedup-Key")
    ]
    by_key = Counter(key for key, _ in set(delivered))
    redelivered = len(delivered) - len(set(delivered))
    if redelivered:
        out(f"emails delivered again after a crash, same Message-ID (one message in the mailbox): {redelivered}")
    for key, status in communications:
        wanted = 1 if status == "sent" else 0
        if status not in ("sent", "suppressed"):
            failures.append(f"email {key} is {status}")
        elif by_key[key] != wanted:
            failures.append(f"email {key} ({status}) reached the mail sink as {by_key[key]} different messages")
    known = {key for key, _ in communications}
    failures += [f"mail {key} has no communications row" for key in by_key if key not in known]
    failures += await stuck_workflows(client)
    return failures


async def stuck_workflows(client: Client) -> list[str]:
    """Open workflows that wait on nothing they should: no timer, activity or child pending, not a type that waits
    for signals; or one whose workflow task or an activity keeps failing."""
    stuck = []
    async for execution in client.list_workflows("ExecutionStatus = 'Running'"):
        handle = client.get_workflow_handle(execution.id, run_id=execution.run_id)
        described = (await handle.describe()).raw_description
        name = execution.workflow_type
        if described.pending_workflow_task.attempt > 1:
            stuck.append(
                f"{execution.id} ({name}): workflow task failing, attempt {described.pending_workflow_task.attempt}"
            )
            continue
        # Past its seventh attempt an activity has kept failing for over a minute since the last fault ended.
        failing = [a for a in described.pending_activities if a.attempt >= 8 and a.HasField("last_failure")]
        for activity in failing:
            stuck.append(
                f"{execution.id} ({name}): activity {activity.activity_type.name} attempt {activity.attempt}: "
                f"{activity.last_failure.message[:200]}"
            )
        if described.pending_activities or described.pending_children or name in ENTITY_WORKFLOWS:
            continue
        timers: set[str] = set()
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED:
                timers.add(event.timer_started_event_attributes.timer_id)
            elif event.event_type == EventType.EVENT_TYPE_TIMER_FIRED:
                timers.discard(event.timer_fired_event_attributes.timer_id)
            elif event.event_type == EventType.EVENT_TYPE_TIMER_CANCELED:
                timers.discard(event.timer_canceled_event_attributes.timer_id)
        if not timers:
            stuck.append(f"{execution.id} ({name}): running with no timer, activity or child pending")
    return stuck


# --- figures -----------------------------------------------------------------------------------------------------


async def completions(clients: Clients) -> list[float]:
    """When each accepted enrollment reached demo_scheduled (the step's own timestamp), sorted."""
    async with clients.sessions() as session:
        rows = await session.scalars(
            select(col(Enrollment.steps)).where(col(Enrollment.id).in_([uuid.UUID(i) for i in clients.tally.accepted]))
        )
        times = [
            datetime.fromisoformat(step["at"]).timestamp()
            for steps in rows
            for step in steps
            if step["state"] == "demo_scheduled"
        ]
    return sorted(times)


def rate(times: list[float], start: float, seconds: float) -> float:
    return sum(1 for t in times if start <= t < start + seconds) / seconds


def figures_table(baseline: Injected, injected: list[Injected], times: list[float]) -> str:
    base = rate(times, baseline.at, baseline.window)
    lines = [
        "| fault | to first enrollment after it | enrollments/s in its window | without faults | held |",
        "|---|---|---|---|---|",
    ]
    for fault in injected:
        first = next((t for t in times if t > fault.at), None)
        to_first = f"{first - fault.at:.1f} s" if first is not None else "none"
        during = rate(times, fault.at, fault.window)
        held = f"{100 * during / base:.0f} %" if base else "n/a"
        lines.append(f"| {fault.name} | {to_first} | {during:.2f} | {base:.2f} | {held} |")
    return "\n".join(lines)


# --- the suite ---------------------------------------------------------------------------------------------------


@dataclass
class Options:
    faults: list[str]
    together: bool
    families: int
    concurrency: int
    window: float
    outage: float
    settle_timeout: float = 240.0


async def suite(run: CedarRun, options: Options, out: Callable[[str], None] = print) -> list[str]:
    """Runs the load and the faults against `run`; returns the failed checks (none: everything survived)."""
    await add_bench_teachers(run.settings, run.database_url)
    clients = Clients(run, options.concurrency, options.families)
    client = await connect_temporal(run.settings, run.temporal_address)
    load = asyncio.create_task(clients.drive())
    injected: list[Injected] = []
    try:
        await asyncio.sleep(2)  # the clients' first round warms connections
        baseline = Injected("none (baseline)", time.time(), options.window)
        await asyncio.sleep(options.window)
        rounds: list[list[str]] = [[name] for name in options.faults]
        if options.together:
            rounds.append(list(options.faults))
        for names in rounds:
            label = " + ".join(names) if len(names) > 1 else names[0]
            window = (
                max(options.window, options.outage + 5) if {"stripe-down", "mail-down"} & set(names) else options.window
            )
            out(f"fault: {label}")
            at = time.time()
            ends = [await inject(name, run, clients, options.outage) for name in names]
            await asyncio.sleep(max(0.0, at + window - time.time()))
            await asyncio.gather(*(end() for end in ends))
            injected.append(Injected(label, at, window))
    finally:
        clients.stopping.set()
    out(f"settling ({len(clients.tally.accepted)} enrollments accepted)...")
    drained = time.monotonic() + options.settle_timeout
    try:
        await asyncio.wait_for(asyncio.gather(load, clients.settle()), options.settle_timeout)
    except TimeoutError:
        clients.tally.errors.append(f"clients still waiting for an answer after {options.settle_timeout:g} s")
    await _wait_settled(clients, max(1.0, drained - time.monotonic()))
    failures = await check(run, clients, client, out)
    if run.process is not None and run.process.poll() is not None:
        failures.append("./cedar run stopped:\n" + "".join(run.output[-30:]))
    times = await completions(clients)
    out("")
    out(figures_table(baseline, injected, times))
    tally = clients.tally
    out(
        f"\n{len(tally.accepted)} enrollments accepted ({tally.posts} posted, {tally.post_retries} retries), "
        f"{tally.families} taken to billing; renewals: {dict(tally.renewals)}; restarts: {run.restarts()}"
    )
    await clients.close()
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--own-stack", action="store_true", help="start a fresh ./cedar run, then stop it")
    parser.add_argument("--families", type=int, default=6, help="enrollments taken on to billing (default 6)")
    parser.add_argument("--fault", default="all", help=f"one of {', '.join(FAULTS)}, or all (default)")
    parser.add_argument("--concurrency", type=int, default=4, help="enrollment clients (default 4)")
    parser.add_argument("--window", type=float, default=30, help="seconds measured per fault (default 30)")
    parser.add_argument("--outage", type=float, default=30, help="seconds localstripe or the mail sink is down")
    parser.add_argument("--api-processes", type=int, default=2, help="API processes of the own stack (default 2)")
    args = parser.parse_args(argv)
    if args.fault != "all" and args.fault not in FAULTS:
        parser.error(f"--fault must be all or one of {', '.join(FAULTS)}")
    options = Options(
        faults=list(FAULTS) if args.fault == "all" else [args.fault],
        together=args.fault == "all",
        families=args.families,
        concurrency=args.concurrency,
        window=args.window,
        outage=args.outage,
    )
    with tempfile.TemporaryDirectory(prefix="cedar-faults-") as directory:
        run = CedarRun.own(Path(directory), args.api_processes) if args.own_stack else CedarRun.existing()
        try:
            failures = asyncio.run(suite(run, options))
        finally:
            run.stop()
    return verdict(failures)


def verdict(failures: Sequence[str]) -> int:
    """Prints the checks' outcome; the exit status (1 when any failed)."""
    print(f"\n{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: ", end="")
    if failures:
        print(f"{len(failures)} check(s) failed:\n" + "\n".join(f"  {f}" for f in failures))
        return 1
    print("every check passed: nothing lost or doubled")
    return 0


if __name__ == "__main__":
    sys.exit(main())
