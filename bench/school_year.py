"""A simulated school year: ``.venv/bin/python -m bench.school_year --families N [--own-stack] [--months 10]
[--concurrency 8] [--api-processes 2] [--worker-processes 1] [--seed 19]``.

N families go through a compressed school year on the real stack (``--own-stack``: a fresh ``./cedar run`` in a
temporary directory on free ports, stopped after; without it the running one, which must have been started with
the settings below). Each family applies through the public form, gets its demo lesson, and the office reports
the demo's outcome (``continue``): weekly lessons are booked for a one-semester year (a calendar file,
``CEDAR_REFERENCE_DATA_FILE``, whose semester starts today). Then, month by month, every family's subscription is
renewed (the development renewal, which stands in for Stripe's clock and bills the next lesson period). About 5 %
of the renewals are declined (the family's card changed to a declining one first): four in five of those families
put a good card in and the past-due invoice is paid, the fifth never does and dunning, with its delays shortened to
seconds, suspends and then cancels it. About 3 % of the families cancel in some month. After each month the work
the schedules start is started directly, as the schedules would: lesson reminders, the dunning sweep and the
reconciliation (one run of each per simulated month).

At the end it waits for the system to settle, checks that nothing was lost or doubled (bench/faults.py's checks:
every enrollment in its state, invoices paid at most once, each payment in the ledger once, each email once by its
dedup key and Message-ID, the trial balance zero, no workflow stuck; and every renewal invoice of a family in good
standing paid) and prints, per family-year: CPU seconds of each process (its whole process tree, from /proc:
user + system, children reaped included) for the API, the workers, Temporal, PostgreSQL, localstripe and the mail
sink; the Temporal history events and bytes; and the database's growth in bytes. It exits 1 when a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select, text
from sqlmodel import col
from temporalio.client import Client

from bench.enrollment import add_bench_teachers
from bench.faults import DECLINE_CARD, CedarRun, Clients, _wait_settled, check, verdict
from bench.histories import Histories, scan_histories
from core.contracts.scheduled import (
    DUNNING_SWEEP_WORKFLOW,
    LESSON_REMINDERS_WORKFLOW,
    RECONCILIATION_WORKFLOW,
    ReconcileRequest,
    RemindersRequest,
    SweepRequest,
)
from core.temporal import connect_temporal
from models import Invoice

GOOD_CARD = "4242424242424242"
DECLINE_RATE = 0.05  # of renewals
LAPSE_SHARE = 0.2  # of declined families: never put a good card in
CANCEL_RATE = 0.03  # of families
COMPONENTS = ("api", "workers", "temporal", "postgres", "localstripe", "smtp-sink")
PRODUCTION = ("api", "workers", "temporal", "postgres")
# Dunning's calendar in seconds, so a family that never pays is suspended and cancelled within the run, while one
# that puts a new card in right after the decline is paid long before its warning.
SHORT_DUNNING = {
    "CEDAR_DUNNING_WARNING_AFTER": "PT30S",
    "CEDAR_DUNNING_SUSPEND_AFTER": "PT45S",
    "CEDAR_DUNNING_CANCEL_AFTER": "PT60S",
    "CEDAR_DUNNING_RETRY_OFFSETS": '["PT5S", "PT35S", "PT50S"]',
    "CEDAR_DEMO_MIN_NOTICE": "PT2S",
}


# --- the year's plan ---------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What befalls whom and when (month numbers from 1), drawn once from the seed."""

    declines: set[tuple[int, int]] = field(default_factory=set)  # (family, month): renewed on a declining card
    lapses: dict[int, int] = field(default_factory=dict)  # family -> month it declines and never pays
    cancels: dict[int, int] = field(default_factory=dict)  # family -> month it cancels

    @classmethod
    def draw(cls, families: int, months: int, seed: int) -> Plan:
        """At least one of each event, however small the school, so every path runs."""
        rng = random.Random(seed)
        order = list(range(families))
        rng.shuffle(order)
        declined = max(2, round(DECLINE_RATE * families * months))
        lapsing = max(1, round(LAPSE_SHARE * declined))
        cancelling = max(1, round(CANCEL_RATE * families))
        plan = cls()
        plan.cancels = {f: rng.randint(2, months) for f in order[:cancelling]}
        plan.lapses = {f: rng.randint(1, months) for f in order[cancelling : cancelling + lapsing]}
        steady = order[cancelling + lapsing :] or order
        while len(plan.declines) < min(declined - lapsing, len(steady) * months):
            plan.declines.add((rng.choice(steady), rng.randint(1, months)))
        return plan


def calendar_file(path: Path, today: date, months: int) -> Path:
    """One academic year whose only semester starts today and holds `months` months of lessons, no closures."""
    end = today + timedelta(days=31 * months)
    year = {"name": "Bench year", "start_date": today.isoformat(), "end_date": (end + timedelta(days=30)).isoformat()}
    semester = {"name": "Bench semester", "start_date": today.isoformat(), "end_date": end.isoformat()}
    path.write_text(json.dumps({"academic_years": [{**year, "semesters": [semester], "closures": []}]}))
    return path


# --- CPU, history and database figures ---------------------------------------------------------------------------


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, user + system ticks of the process and of the children it has reaped)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    return int(fields[1]), sum(int(v) for v in fields[11:15])


def cpu_seconds(run: CedarRun, names: list[str]) -> dict[str, float]:
    """CPU seconds so far of each child of the run and its descendants (PostgreSQL's backends have sessions of
    their own, so the tree is followed by parent pid)."""
    stats = {pid: found for entry in os.listdir("/proc") if entry.isdigit() and (found := _stat(pid := int(entry)))}
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    hz = os.sysconf("SC_CLK_TCK")
    by_component: dict[str, float] = {}
    for name in names:
        ticks, todo = 0, [run.pid(name)]
        while todo:
            pid = todo.pop()
            ticks += stats[pid][1] if pid in stats else 0
            todo += children.get(pid, [])
        component = "workers" if name.startswith("worker") else name
        by_component[component] = by_component.get(component, 0.0) + ticks / hz
    return by_component


async def database_bytes(clients: Clients) -> int:
    async with clients.sessions() as session:
        return int(await session.scalar(text("SELECT pg_database_size(current_database())")) or 0)


@dataclass
class Snapshot:
    cpu: dict[str, float]
    db_bytes: int
    histories: Histories
    at: float = field(default_factory=time.monotonic)


async def snapshot(run: CedarRun, clients: Clients, client: Client, children: list[str]) -> Snapshot:
    cpu = cpu_seconds(run, children)  # before the history scan, whose own cost is not the year's
    return Snapshot(cpu, await database_bytes(clients), await scan_histories(client))


def figures_table(families: int, before: Snapshot, after: Snapshot) -> list[str]:
    """The year's cost per family-year, one row per figure."""
    rows = [(f"CPU s, {c}", after.cpu.get(c, 0.0) - before.cpu.get(c, 0.0)) for c in COMPONENTS]
    cpu_total = sum(value for _, value in rows)
    # What production runs too: localstripe and the mail sink stand in for Stripe and a mail provider.
    production = sum(value for name, value in rows if name.removeprefix("CPU s, ") in PRODUCTION)
    rows += [
        ("CPU s, all servers", cpu_total),
        ("CPU s, API + workers + Temporal + PostgreSQL", production),
        ("Temporal history events", after.histories.events - before.histories.events),
        ("Temporal history bytes", after.histories.bytes - before.histories.bytes),
        ("workflow executions", after.histories.workflows - before.histories.workflows),
        ("database bytes", after.db_bytes - before.db_bytes),
    ]
    lines = [f"| per family-year ({families} families) | value |", "|---|---|"]
    lines += [f"| {name} | {value / families:,.3f} |" for name, value in rows]
    lines.append(f"| wall time, s (whole run) | {after.at - before.at:,.1f} |")
    return lines


# --- the year ----------------------------------------------------------------------------------------------------


@dataclass
class Family:
    number: int
    enrollment_id: str
    subscription_id: uuid.UUID
    parent_id: uuid.UUID
    gone: bool = False  # cancelled, written off, or nothing left to bill


class Year:
    def __init__(self, run: CedarRun, clients: Clients, client: Client, plan: Plan, concurrency: int) -> None:
        self.run = run
        self.clients = clients
        self.client = client
        self.plan = plan
        self.gate = asyncio.Semaphore(concurrency)
        self.families: list[Family] = []
        self.events: Counter[str] = Counter()

    def _error(self, what: str, error: BaseException | str) -> None:
        detail = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.clients.tally.errors.append(f"{what}: {detail}")

    async def join(self, number: int) -> None:
        """Apply, have the demo, continue: an active enrollment with its subscription."""
        clients = self.clients
        async with self.gate:
            try:
                enrollment_id = await clients.enroll()
                if await clients._until_state(enrollment_id, {"demo_scheduled"}, timeout=300) != "demo_scheduled":
                    return  # the check at the end names it
                await clients._as_admin(
                    "POST",
                    f"/api/v1/enrollments/{enrollment_id}/demo-outcome",
                    lambda r: r.status_code < 300,
                    json={"outcome": "continue"},
                )
                clients.tally.accepted[enrollment_id] = "active"
                if await clients._until_state(enrollment_id, {"active"}, timeout=300) != "active":
                    return
                subscription_id, parent_id = await clients._subscription(enrollment_id)
                self.families.append(Family(number, enrollment_id, subscription_id, parent_id))
                self.events["enrolled"] += 1
            except Exception as error:
                self._error(f"family {number} joining", error)

    async def _put_card(self, family: Family, number: str) -> None:
        method = await self.clients._card(number)
        await self.clients._as_admin(
            "PUT",
            f"/api/v1/billing/families/{family.parent_id}/card",
            lambda r: r.status_code == 200,
            json={"payment_method_id": method},
        )

    async def _renew(self, family: Family) -> str | None:
        """The period's status ("paid", ...), or None when nothing is left to bill (the subscription ended)."""
        url = f"/api/v1/billing/subscriptions/{family.subscription_id}/renewals"
        response = await self.clients.http.post(url, headers=await self.clients._admin(), timeout=60)
        if response.status_code == 401:  # the admin's token expired: refused, so nothing was billed
            self.clients._token = None
            response = await self.clients.http.post(url, headers=await self.clients._admin(), timeout=60)
        if response.status_code == 409:
            return None
        if response.status_code != 201:
            raise RuntimeError(f"renewal answered {response.status_code}: {response.text[:300]}")
        return str(response.json()["status"])

    async def _unpaid(self, family: Family) -> int:
        async with self.clients.sessions() as session:
            found = await session.scalar(
                select(func.count()).where(
                    col(Invoice.subscription_id) == family.subscription_id, col(Invoice.status) == "open"
                )
            )
        return int(found or 0)

    async def _until(self, probe: Callable[[], Any], what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not await probe():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}")
            await asyncio.sleep(0.5)

    async def month(self, family: Family, month: int) -> None:
        clients = self.clients
        async with self.gate:
            try:
                if self.plan.cancels.get(family.number) == month:
                    await clients._as_admin(
                        "POST",
                        f"/api/v1/enrollments/{family.enrollment_id}/cancel",
                        lambda r: r.status_code < 300,
                        json={"reason": "cancelled on request"},
                    )
                    clients.tally.accepted[family.enrollment_id] = "cancelled"
                    family.gone = True
                    self.events["cancelled"] += 1
                    return
                lapse = self.plan.lapses.get(family.number) == month
                decline = lapse or (family.number, month) in self.plan.declines
                if decline:
                    await self._put_card(family, DECLINE_CARD)
                status = await self._renew(family)
                if status is None:
                    family.gone = True
                    self.events["nothing left to bill"] += 1
                    return
                self.events[f"renewal {'declined card' if decline else 'card'}: {status}"] += 1
                if lapse:
                    # Dunning's shortened calendar runs out while the year goes on: written off, the enrollment
                    # cancelled (the checks at the end wait for it).
                    clients.tally.accepted[family.enrollment_id] = "cancelled"
                    family.gone = True
                    self.events["declined, never paid"] += 1
                elif decline:
                    await self._put_card(family, GOOD_CARD)  # past-due invoices are retried at once
                    await self._until(lambda: self._paid_up(family), f"family {family.number}'s past-due invoice paid")
                    self.events["declined, then paid with a new card"] += 1
            except Exception as error:
                self._error(f"family {family.number} month {month}", error)

    async def _paid_up(self, family: Family) -> bool:
        return await self._unpaid(family) == 0

    async def scheduled(self, month: int) -> None:
        """What the schedules start, started directly: reminders, the dunning sweep, the reconciliation."""
        jobs: list[tuple[str, BaseModel]] = [
            (LESSON_REMINDERS_WORKFLOW, RemindersRequest()),
            (DUNNING_SWEEP_WORKFLOW, SweepRequest()),
            (RECONCILIATION_WORKFLOW, ReconcileRequest()),
        ]
        for name, argument in jobs:
            try:
                await self.client.execute_workflow(
                    name,
                    argument,
                    id=f"bench-year-{name}-{month}-{uuid.uuid4().hex[:8]}",
                    task_queue=self.run.settings.task_queue,
                    execution_timeout=timedelta(minutes=10),
                )
                self.events[f"scheduled: {name}"] += 1
            except Exception as error:
                self._error(f"{name} in month {month}", error)

    async def run_year(self, families: int, months: int, out: Callable[[str], None]) -> None:
        await asyncio.gather(*(self.join(n) for n in range(families)))
        out(f"{len(self.families)} of {families} families active")
        for month in range(1, months + 1):
            await asyncio.gather(*(self.month(f, month) for f in self.families if not f.gone))
            await self.scheduled(month)
            out(f"month {month} done ({sum(not f.gone for f in self.families)} families billed on)")

    async def unpaid_in_good_standing(self) -> list[str]:
        """Every renewal invoice of a family still in good standing is paid."""
        lapsed = set(self.plan.lapses)
        failures = []
        for family in self.families:
            if family.number not in lapsed and (n := await self._unpaid(family)):
                failures.append(f"family {family.number} has {n} unpaid invoices")
        return failures


# --- the run -----------------------------------------------------------------------------------------------------


@dataclass
class Options:
    families: int
    months: int = 10
    concurrency: int = 8
    seed: int = 19
    settle_timeout: float = 300.0


def stack_env(directory: Path, months: int) -> dict[str, str]:
    """The settings an own stack starts with: the bench's calendar and dunning's calendar in seconds."""
    calendar = calendar_file(directory / "bench-calendar.json", datetime.now(UTC).date(), months)
    return {"CEDAR_REFERENCE_DATA_FILE": str(calendar), **SHORT_DUNNING}


async def school_year(run: CedarRun, options: Options, out: Callable[[str], None] = print) -> list[str]:
    """The year against `run`; prints the figures and returns the failed checks (none: nothing lost or doubled)."""
    await add_bench_teachers(run.settings, run.database_url)
    clients = Clients(run, options.concurrency, 0)
    client = await connect_temporal(run.settings, run.temporal_address)
    children = [n for n in run.restarts() if n in COMPONENTS or n.startswith("worker")]
    plan = Plan.draw(options.families, options.months, options.seed)
    year = Year(run, clients, client, plan, options.concurrency)
    try:
        before = await snapshot(run, clients, client, children)
        await year.run_year(options.families, options.months, out)
        out(f"settling ({len(clients.tally.accepted)} enrollments)...")
        await _wait_settled(clients, options.settle_timeout)
        after = await snapshot(run, clients, client, children)
        failures = await check(run, clients, client, out)
        failures += await year.unpaid_in_good_standing()
        if len(year.families) != options.families:
            failures.append(f"only {len(year.families)} of {options.families} families became active")
        if run.process is not None and run.process.poll() is not None:
            failures.append("./cedar run stopped:\n" + "".join(run.output[-30:]))
    finally:
        await clients.close()
    out("")
    for line in figures_table(options.families, before, after):
        out(line)
    out("")
    out("events: " + ", ".join(f"{name} {n}" for name, n in sorted(year.events.items())))
    workflows = after.histories.by_type - before.histories.by_type
    out("workflows: " + ", ".join(f"{name} {n}" for name, n in sorted(workflows.items())))
    out(f"restarts: {run.restarts()}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.school_year", description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", type=int, required=True, help="families in the school")
    parser.add_argument("--own-stack", action="store_true", help="start a fresh ./cedar run, then stop it")
    parser.add_argument("--months", type=int, default=10, help="months of lessons and renewals (default 10)")
    parser.add_argument("--concurrency", type=int, default=8, help="families acted for at once (default 8)")
    parser.add_argument("--api-processes", type=int, default=2, help="API processes of the own stack (default 2)")
    parser.add_argument("--worker-processes", type=int, default=1, help="worker processes of the own stack")
    parser.add_argument("--seed", type=int, default=19, help="the plan's random seed (default 19)")
    args = parser.parse_args(argv)
    if args.families < 1 or args.months < 2:
        parser.error("--families must be at least 1 and --months at least 2")
    options = Options(families=args.families, months=args.months, concurrency=args.concurrency, seed=args.seed)
    with tempfile.TemporaryDirectory(prefix="cedar-year-") as directory:
        if args.own_stack:
            env = stack_env(Path(directory), args.months)
            workers = args.worker_processes
            run = CedarRun.own(Path(directory), args.api_processes, worker_processes=workers, extra_env=env)
        else:
            run = CedarRun.existing()
        try:
            failures = asyncio.run(school_year(run, options))
        finally:
            run.stop()
    return verdict(failures)


if __name__ == "__main__":
    sys.exit(main())
