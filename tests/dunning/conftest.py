"""Dunning's test kit: a family with lessons, a stand-in billing workflow that records what dunning asks of it,
and a worker running the real dunning workflow, activities and email sending on shortened settings."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import select
from sqlmodel import col
from temporalio import workflow
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities.email import EmailActivities
from core.contracts.billing import (
    FAMILY_BILLING_WORKFLOW,
    SIGNAL_RETRY_INVOICE,
    SIGNAL_WRITE_OFF,
    FamilyBillingInput,
    RetryInvoice,
    WriteOff,
)
from core.contracts.dunning import (
    FAMILY_DUNNING_WORKFLOW,
    QUERY_STATE,
    SIGNAL_INVOICE_FAILED,
    DunningSnapshot,
    FamilyDunningInput,
    InvoiceFailed,
)
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.temporal import billing_workflow_id, dunning_workflow_id
from models import Communication, Enrollment, Lesson, Parent, Student, Teacher
from tests.waiting import eventually
from workers.main import build_deps, workflow_runner
from workers.registry import WORKFLOWS, WorkerDeps, activity_functions

# Short enough to walk every state in seconds; retries land before each boundary as in production.
DUNNING_TIMINGS: dict[str, Any] = {
    "dunning_warning_after": timedelta(seconds=3),
    "dunning_suspend_after": timedelta(seconds=6),
    "dunning_cancel_after": timedelta(seconds=9),
    "dunning_retry_offsets": [
        timedelta(seconds=1),
        timedelta(seconds=2),
        timedelta(seconds=5),
        timedelta(seconds=8),
    ],
    "dunning_unknown_recheck_after": timedelta(seconds=2),
}


class Recorded(BaseModel):
    retries: list[RetryInvoice] = []
    write_offs: list[WriteOff] = []


@workflow.defn(name=FAMILY_BILLING_WORKFLOW, sandboxed=False)
class StandInBillingWorkflow:
    """Records dunning's requests; the test answers them as billing would (InvoicePaid / InvoiceFailed)."""

    def __init__(self) -> None:
        self._recorded = Recorded()

    @workflow.run
    async def run(self, _: FamilyBillingInput) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name=SIGNAL_RETRY_INVOICE)
    def retry_invoice(self, retry: RetryInvoice) -> None:
        self._recorded.retries.append(retry)

    @workflow.signal(name=SIGNAL_WRITE_OFF)
    def write_off(self, write_off: WriteOff) -> None:
        self._recorded.write_offs.append(write_off)

    @workflow.query(name="recorded")
    def recorded(self) -> Recorded:
        return self._recorded


@dataclass
class Family:
    parent_id: uuid.UUID
    student_id: uuid.UUID
    teacher_id: uuid.UUID
    enrollment_id: uuid.UUID
    email: str
    teacher_email: str


async def make_family(
    sessions: SessionFactory, lessons: int = 3, first_lesson_in: timedelta = timedelta(days=2)
) -> Family:
    """A parent, a student in an active piano enrollment with a teacher (one seat taken), and weekly lessons."""
    tag = uuid.uuid4().hex[:8]
    async with transaction(sessions) as session:
        teacher = Teacher(
            first_name="Tess",
            last_name="Keys",
            display_name="Tess K.",
            email=f"tess-{tag}@school.example",
            instruments=["piano"],
            capacity=5,
            active_students=1,
        )
        parent = Parent(first_name="Pat", last_name="Lee", email=f"pat-{tag}@family.example", phone="+16045550100")
        session.add_all([teacher, parent])
        await session.flush()
        student = Student(parent_id=parent.id, first_name="Sam", last_name="Lee", date_of_birth=date(2015, 5, 1))
        session.add(student)
        await session.flush()
        enrollment = Enrollment(
            request_hash="0" * 64,
            workflow_id=f"enrollment-{tag}",
            state="active",
            parent_id=parent.id,
            student_id=student.id,
            teacher_id=teacher.id,
            instrument="piano",
            lesson_minutes=30,
            billing_interval="month",
            application={"student": {"first_name": "Sam"}},
            stripe_payment_method_id="pm_card_visa",
        )
        session.add(enrollment)
        await session.flush()
        start = datetime.now(UTC).replace(microsecond=0) + first_lesson_in
        for week in range(lessons):
            at = start + timedelta(weeks=week)
            session.add(
                Lesson(
                    kind="regular",
                    teacher_id=teacher.id,
                    student_id=student.id,
                    enrollment_id=enrollment.id,
                    starts_at=at,
                    ends_at=at + timedelta(minutes=30),
                )
            )
    return Family(parent.id, student.id, teacher.id, enrollment.id, parent.email, teacher.email)


async def lesson_statuses(sessions: SessionFactory, family: Family) -> list[str]:
    async with sessions() as session:
        rows = await session.scalars(select(col(Lesson.status)).where(col(Lesson.student_id) == family.student_id))
        return sorted(rows)


async def sent_templates(sessions: SessionFactory, family: Family) -> list[str]:
    """The dedup keys' kinds of every email sent to the family, in order."""
    async with sessions() as session:
        rows = await session.scalars(
            select(col(Communication.dedup_key))
            .where(col(Communication.parent_id) == family.parent_id, col(Communication.status) == "sent")
            .order_by(col(Communication.created_at))
        )
        return [key.split(":")[1] for key in rows]


def failure(family: Family, invoice: str = "in_1", attempt: int = 1, **extra: Any) -> InvoiceFailed:
    return InvoiceFailed(
        parent_id=family.parent_id,
        invoice_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{family.parent_id}/{invoice}"),
        stripe_invoice_id=invoice,
        amount_due_minor=12000,
        failed_at=datetime.now(UTC),
        attempt=attempt,
        **extra,
    )


class DunningKit:
    """Starts and drives one family's dunning workflow against the stand-in billing workflow."""

    def __init__(self, client: Client, settings: Settings, family: Family) -> None:
        self.client, self.settings, self.family = client, settings, family

    @property
    def dunning(self) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(dunning_workflow_id(self.family.parent_id))

    @property
    def billing(self) -> WorkflowHandle[Any, Any]:
        return self.client.get_workflow_handle(billing_workflow_id(self.family.parent_id))

    async def start_billing(self) -> None:
        await self.client.start_workflow(
            FAMILY_BILLING_WORKFLOW,
            FamilyBillingInput(parent_id=self.family.parent_id),
            id=billing_workflow_id(self.family.parent_id),
            task_queue=self.settings.task_queue,
        )

    async def fail(self, message: InvoiceFailed) -> None:
        """What billing does on a failed payment: signal-with-start the family's dunning workflow."""
        await self.client.start_workflow(
            FAMILY_DUNNING_WORKFLOW,
            FamilyDunningInput(parent_id=self.family.parent_id),
            id=dunning_workflow_id(self.family.parent_id),
            task_queue=self.settings.task_queue,
            start_signal=SIGNAL_INVOICE_FAILED,
            start_signal_args=[message],
        )

    async def snapshot(self) -> DunningSnapshot:
        return await self.dunning.query(QUERY_STATE, result_type=DunningSnapshot)

    async def wait_state(
        self, state: str, timeout: float = 20.0, lessons_suspended: bool | None = None
    ) -> DunningSnapshot:
        """The first snapshot in ``state`` (and, when given, with the lessons' suspension done or undone: the
        workflow enters a state before its lesson activities finish)."""

        async def probe() -> DunningSnapshot | None:
            snap = await self.snapshot()
            if lessons_suspended is not None and snap.lessons_suspended != lessons_suspended:
                return None
            return snap if snap.state == state else None

        return await eventually(probe, timeout=timeout, what=f"dunning state {state}")

    async def recorded(self) -> Recorded:
        return await self.billing.query("recorded", result_type=Recorded)

    async def wait_retries(self, count: int, timeout: float = 20.0) -> list[RetryInvoice]:
        async def probe() -> list[RetryInvoice] | None:
            retries = (await self.recorded()).retries
            return retries if len(retries) >= count else None

        return await eventually(probe, timeout=timeout, what=f"{count} retry requests")


def dunning_worker(client: Client, deps: WorkerDeps) -> Worker:
    """The real workflows and activities, with the stand-in in place of billing's workflow (and the shared
    email activity if the registry does not carry it yet)."""
    workflows = [
        wf for wf in WORKFLOWS if getattr(wf, "__temporal_workflow_definition").name != FAMILY_BILLING_WORKFLOW
    ]
    activities = activity_functions(deps)
    names = {getattr(fn, "__temporal_activity_definition").name for fn in activities}
    if "send_email" not in names:
        activities.append(EmailActivities(deps.settings, deps.sessions, deps.mailer, deps.identity).send_email)
    return Worker(
        client,
        task_queue=deps.settings.task_queue,
        workflows=[*workflows, StandInBillingWorkflow],
        activities=activities,
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=8),
        workflow_runner=workflow_runner(),
    )


@pytest.fixture
def dunning_settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings(**DUNNING_TIMINGS)


@pytest.fixture
async def kit(
    dunning_settings: Settings, temporal_client: Client, sessions: SessionFactory
) -> AsyncIterator[DunningKit]:
    """A family, the stand-in billing workflow, and a worker for them, running for the test."""
    deps = build_deps(dunning_settings, sessions, temporal_client)
    family = await make_family(sessions)
    async with dunning_worker(temporal_client, deps):
        kit = DunningKit(temporal_client, dunning_settings, family)
        await kit.start_billing()
        yield kit
        await kit.billing.terminate("test over")
