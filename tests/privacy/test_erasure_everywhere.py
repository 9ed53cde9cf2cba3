"""Erasure reaches every copy: a family in dunning, with an active enrollment, paid and failed invoices, audit rows,
webhook events, a Stripe customer and a login, is erased through the API; afterwards no table, localstripe, the
identity store or any of its Temporal histories holds its names, emails, phone numbers or birth dates. Money
records and the ledger are unchanged, and erasing again changes nothing. Retention removes or blanks what is past
its age and keeps the rest; a staff-typed dunning reason never reaches the workflow's history."""

from __future__ import annotations

import concurrent.futures
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import func, select, text
from sqlmodel import col
from temporalio import workflow
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.worker import Replayer, Worker

from core.audit import record_audit
from core.contracts.billing import FAMILY_BILLING_WORKFLOW
from core.contracts.dunning import AdminAction
from core.contracts.erasure import ErasureReport, erasure_workflow_id
from core.contracts.retention import RETENTION_WORKFLOW, RetentionReport, RetentionRequest
from core.db import SessionFactory, transaction
from core.payload_keys import PayloadKeyDestroyed
from core.settings import Settings
from core.temporal import billing_workflow_id, dunning_workflow_id, enrollment_workflow_id
from models import (
    AuditLog,
    BillingAccount,
    Communication,
    Enrollment,
    Invoice,
    JournalEntry,
    Lesson,
    Parent,
    Payment,
    Posting,
    RefreshToken,
    Role,
    StripeEvent,
    Student,
    Teacher,
    User,
)
from tests.dunning.conftest import DunningKit, Family, StandInBillingWorkflow, dunning_worker, failure
from tests.replay.recorder import open_payloads
from tests.waiting import eventually
from workers.main import build_deps, workflow_runner
from workers.registry import WORKFLOWS, activity_functions
from workflows.dunning import FamilyDunningWorkflow
from workflows.erasure import FamilyErasureWorkflow
from workflows.retention import RetentionWorkflow

API = "/api/v1"
STAND_IN_ENROLLMENT = "ErasureTestEnrollmentWorkflow"


@workflow.defn(name=STAND_IN_ENROLLMENT, sandboxed=False)
class StandInEnrollmentWorkflow:
    """Runs under the enrollment row's workflow id until something closes it (the erasure must)."""

    @workflow.run
    async def run(self, enrollment_id: str) -> None:
        await workflow.wait_condition(lambda: False)


STAFF_REASON = "Wilhelmina phoned: she lost her job, call back on the mobile"


@dataclass(frozen=True)
class Identity:
    """Everything that identifies the family: none of it may survive the erasure anywhere."""

    parent_first: str
    parent_last: str
    email: str
    phone: str
    student_first: str
    birth_date: date

    def needles(self) -> list[str]:
        return [
            self.parent_first,
            self.parent_last,
            self.email,
            self.phone,
            self.phone.removeprefix("+1"),
            self.student_first,
            self.birth_date.isoformat(),
        ]


def new_identity() -> Identity:
    tag = uuid.uuid4().hex[:6]
    return Identity(
        parent_first=f"Wilhelmina{tag}",
        parent_last=f"Quixley{tag}",
        email=f"w.quixley.{tag}@family.example",
        phone=f"+1604{int(tag, 16) % 10_000_000:07d}",
        student_first=f"Bartholomew{tag}",
        # Never January 1st: erasure keeps the birth year only, as that date.
        birth_date=date(2014, 2 + int(tag[:2], 16) % 11, 2 + int(tag[2:4], 16) % 27),
    )


async def make_erasable_family(sessions: SessionFactory, stripe_client: stripe.StripeClient, who: Identity) -> Family:
    """A family as the product makes it: login, parent, child in an active enrollment with lessons, a Stripe
    customer, a paid invoice (its payment in the ledger), a failed one, webhook events, an email and audit rows."""
    customer = await stripe_client.v1.customers.create_async(
        params={"email": who.email, "name": f"{who.parent_first} {who.parent_last}", "phone": who.phone}
    )
    async with transaction(sessions) as session:
        user = User(email=who.email, role=Role.parent, password_hash="argon2-hash-of-a-password")
        teacher = Teacher(
            first_name="Tess",
            last_name="Keys",
            display_name="Tess K.",
            email=f"tess-{uuid.uuid4().hex[:6]}@school.example",
            instruments=["piano"],
            capacity=5,
            active_students=1,
        )
        session.add_all([user, teacher])
        await session.flush()
        parent = Parent(
            user_id=user.id, first_name=who.parent_first, last_name=who.parent_last, email=who.email, phone=who.phone
        )
        session.add(parent)
        await session.flush()
        student = Student(
            parent_id=parent.id, first_name=who.student_first, last_name=who.parent_last, date_of_birth=who.birth_date
        )
        account = BillingAccount(
            parent_id=parent.id, stripe_customer_id=customer.id, workflow_id=billing_workflow_id(parent.id)
        )
        session.add_all(
            [
                student,
                account,
                RefreshToken(
                    user_id=user.id,
                    token_hash=uuid.uuid4().hex,
                    family_id=uuid.uuid4(),
                    expires_at=datetime.now(UTC) + timedelta(days=1),
                ),
            ]
        )
        await session.flush()
        enrollment_id = uuid.uuid4()
        enrollment = Enrollment(
            id=enrollment_id,
            request_hash="0" * 64,
            workflow_id=enrollment_workflow_id(enrollment_id),  # as the product names it: its key is the family's
            state="active",
            parent_id=parent.id,
            student_id=student.id,
            teacher_id=teacher.id,
            instrument="piano",
            lesson_minutes=30,
            billing_interval="month",
            application={
                "parent": {"first_name": who.parent_first, "email": who.email, "phone": who.phone},
                "student": {"first_name": who.student_first, "date_of_birth": who.birth_date.isoformat()},
            },
            stripe_payment_method_id="pm_card_visa",
        )
        paid = Invoice(
            billing_account_id=account.id,
            stripe_invoice_id=f"in_paid_{uuid.uuid4().hex[:8]}",
            status="paid",
            amount_due_minor=12000,
            amount_paid_minor=12000,
            paid_at=datetime.now(UTC),
        )
        unpaid = Invoice(
            billing_account_id=account.id,
            stripe_invoice_id=f"in_open_{uuid.uuid4().hex[:8]}",
            status="open",
            amount_due_minor=12000,
            first_failed_at=datetime.now(UTC),
            attempt_count=1,
        )
        session.add_all([enrollment, paid, unpaid])
        await session.flush()
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        payment = Payment(
            billing_account_id=account.id,
            invoice_id=paid.id,
            stripe_charge_id=f"ch_{uuid.uuid4().hex[:8]}",
            status="succeeded",
            amount_minor=12000,
        )
        entry = JournalEntry(idempotency_key=f"pay:{paid.id}", kind="payment", billing_account_id=account.id)
        session.add_all([payment, entry])
        await session.flush()
        session.add_all(
            [
                Posting(entry_id=entry.id, account_code="stripe_clearing", amount_minor=12000),
                Posting(entry_id=entry.id, account_code="accounts_receivable", amount_minor=-12000),
                Lesson(
                    kind="regular",
                    teacher_id=teacher.id,
                    student_id=student.id,
                    enrollment_id=enrollment.id,
                    starts_at=start,
                    ends_at=start + timedelta(minutes=30),
                    notes=f"{who.student_first} practised scales",
                ),
                Communication(
                    dedup_key=f"welcome:{parent.id}",
                    template="welcome",
                    recipient=who.email,
                    subject=f"Welcome, {who.student_first}",
                    parent_id=parent.id,
                    status="sent",
                ),
                StripeEvent(
                    stripe_event_id=f"evt_{uuid.uuid4().hex[:10]}",
                    type="customer.created",
                    stripe_customer_id=customer.id,
                    payload={"id": "evt_c", "type": "customer.created", "data": {"object": customer.to_dict()}},
                    status="processed",
                ),
                StripeEvent(
                    stripe_event_id=f"evt_{uuid.uuid4().hex[:10]}",
                    type="invoice.payment_failed",
                    stripe_customer_id=customer.id,
                    payload={
                        "id": "evt_f",
                        "type": "invoice.payment_failed",
                        "data": {
                            "object": {
                                "id": "in_1",
                                "object": "invoice",
                                "customer": customer.id,
                                "customer_email": who.email,
                                "customer_name": f"{who.parent_first} {who.parent_last}",
                                "customer_phone": who.phone,
                                "hosted_invoice_url": f"https://invoice.stripe.test/{who.email}",
                                "amount_due": 12000,
                                "currency": "cad",
                                "status": "open",
                            }
                        },
                    },
                    status="failed",
                    error=f"duplicate key value violates unique constraint: Key (email)=({who.email})",
                ),
            ]
        )
        before = {"first_name": who.parent_first, "email": who.email, "phone": who.phone}
        await record_audit(
            session,
            actor_user_id=None,
            actor_role="admin",
            action="update",
            entity_type="parent",
            entity_id=parent.id,
            before=before,
            after={**before, "phone": "+16045550000"},
        )
        await record_audit(
            session,
            actor_user_id=None,
            actor_role="admin",
            action="update",
            entity_type="student",
            entity_id=student.id,
            after={"first_name": who.student_first, "date_of_birth": who.birth_date.isoformat()},
        )
    return Family(parent.id, student.id, teacher.id, enrollment.id, who.email, teacher.email)


async def text_hits(sessions: SessionFactory, needles: list[str]) -> list[str]:
    """Every (table.column, needle) where a text or JSON column of any table holds one of ``needles``."""
    hits = []
    async with sessions() as session:
        columns = (
            await session.execute(
                text(
                    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public' "
                    "AND data_type IN ('text', 'character varying', 'json', 'jsonb', 'ARRAY')"
                )
            )
        ).all()
        for table, column in columns:
            for needle in needles:
                found = await session.scalar(
                    text(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text ILIKE :needle'),  # noqa: S608
                    {"needle": f"%{needle}%"},
                )
                if found:
                    hits.append(f"{table}.{column}: {needle}")
    return hits


async def database_dump(sessions: SessionFactory) -> dict[str, list[str]]:
    """Every row of every table, as text, sorted: equal dumps mean nothing changed."""
    async with sessions() as session:
        tables = (
            await session.scalars(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'")
            )
        ).all()
        dump = {}
        for table in tables:
            rows = await session.execute(text(f'SELECT t::text FROM "{table}" t'))  # noqa: S608 (names from pg_tables)
            dump[table] = sorted(str(row) for row in rows.all())
        return dump


async def money(sessions: SessionFactory) -> tuple[int, int, int, int]:
    async with sessions() as session:
        invoiced = await session.scalar(select(func.coalesce(func.sum(col(Invoice.amount_due_minor)), 0)))
        paid = await session.scalar(select(func.coalesce(func.sum(col(Payment.amount_minor)), 0)))
        balance = await session.scalar(select(func.coalesce(func.sum(col(Posting.amount_minor)), 0)))
        postings = await session.scalar(select(func.count()).select_from(Posting))
    return int(invoiced or 0), int(paid or 0), int(balance or 0), int(postings or 0)


async def history_bytes(client: Client, workflow_id: str, *, opened: bool = False) -> bytes:
    """The history as the server keeps it, or (``opened``) with its payloads decoded through the codec."""
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    if opened:
        assert client.data_converter.payload_codec is not None
        for event in history.events:
            await open_payloads(event, client.data_converter.payload_codec)
    return history.to_json().encode() + b"".join(e.SerializeToString() for e in history.events)


async def erase_and_wait(api: httpx.AsyncClient, admin: dict[str, str], client: Client, parent_id: uuid.UUID) -> Any:
    started = await api.post(f"{API}/parents/{parent_id}/erasure", headers=admin)
    assert started.status_code == 202, started.text
    assert started.json()["workflow_id"] == erasure_workflow_id(parent_id)
    return await client.get_workflow_handle(erasure_workflow_id(parent_id), result_type=ErasureReport).result()


@pytest.fixture
async def kit(settings: Settings, temporal_client: Client, sessions: SessionFactory) -> AsyncIterator[DunningKit]:
    """An erasable family, its (stand-in) billing workflow and its dunning workflow, with a worker running."""
    deps = build_deps(settings, sessions, temporal_client)
    who = new_identity()
    family = await make_erasable_family(sessions, deps.stripe, who)
    # The real workflows, with stand-ins for billing (as dunning's tests run it) and for an enrollment's workflow.
    real = [wf for wf in WORKFLOWS if getattr(wf, "__temporal_workflow_definition").name != FAMILY_BILLING_WORKFLOW]
    worker = Worker(
        temporal_client,
        task_queue=settings.task_queue,
        workflows=[*real, StandInBillingWorkflow, StandInEnrollmentWorkflow],
        activities=activity_functions(deps),
        activity_executor=concurrent.futures.ThreadPoolExecutor(max_workers=8),
        workflow_runner=workflow_runner(),
    )
    async with worker:
        kit = DunningKit(temporal_client, settings, family)
        kit.who = who  # type: ignore[attr-defined]
        kit.stripe = deps.stripe  # type: ignore[attr-defined]
        await kit.start_billing()
        async with sessions() as session:
            enrollment = await session.get(Enrollment, family.enrollment_id)
        assert enrollment is not None
        kit.enrollment_workflow_id = enrollment.workflow_id  # type: ignore[attr-defined]
        await temporal_client.start_workflow(
            STAND_IN_ENROLLMENT, str(family.enrollment_id), id=enrollment.workflow_id, task_queue=settings.task_queue
        )
        yield kit


async def test_erasure_reaches_every_copy_and_changes_nothing_the_second_time(
    kit: DunningKit,
    api: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
    sessions: SessionFactory,
    temporal_client: Client,
) -> None:
    who: Identity = kit.who  # type: ignore[attr-defined]
    stripe_client: stripe.StripeClient = kit.stripe  # type: ignore[attr-defined]
    family = kit.family
    admin = await auth_headers(Role.admin)
    await kit.fail(failure(family))
    await kit.wait_state("clear")

    # Staff pause the family's dunning with a typed reason: it is kept in the database, not in the history.
    paused = await api.post(
        f"{API}/dunning/families/{family.parent_id}/pause", json={"reason": STAFF_REASON}, headers=admin
    )
    assert paused.status_code == 202, paused.text

    async def paused_with_reason() -> dict[str, Any] | None:
        view = (await api.get(f"{API}/dunning/families/{family.parent_id}", headers=admin)).json()
        return view if view["paused"] else None

    view = await eventually(paused_with_reason, timeout=10, what="the pause")
    assert [e["detail"] for e in view["timeline"] if e["kind"] == "paused"] == [STAFF_REASON]
    dunning_history = await history_bytes(temporal_client, dunning_workflow_id(family.parent_id), opened=True)
    assert STAFF_REASON.encode() not in dunning_history
    async with sessions() as session:
        note = await session.scalar(select(col(AuditLog.id)).where(col(AuditLog.action) == "dunning.pause"))
    assert str(note).encode() in dunning_history  # the history carries the reference, and the search sees it
    # The new path (a note id instead of the text) replays.
    replayer = Replayer(
        workflows=[FamilyDunningWorkflow],
        workflow_runner=workflow_runner(),
        data_converter=temporal_client.data_converter,
    )
    history = await temporal_client.get_workflow_handle(dunning_workflow_id(family.parent_id)).fetch_history()
    assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None
    assert AdminAction.model_validate({"reason": "an old history's reason"}).reason  # the old field still decodes

    assert await text_hits(sessions, who.needles())  # the search finds the family before the erasure
    money_before = await money(sessions)

    report = await erase_and_wait(api, admin, temporal_client, family.parent_id)
    steps = {step.step: step for step in report.steps}
    assert list(steps) == [
        "close_workflows",
        "blank_rows",
        "redact_audit",
        "redact_webhooks",
        "delete_stripe_customer",
        "remove_login",
        "destroy_payload_keys",
    ]
    assert steps["close_workflows"].count == 3  # the enrollment's, dunning, then billing
    assert steps["redact_audit"].count == 3  # the parent's, the student's and the pause's snapshots
    assert steps["redact_webhooks"].count == 2
    assert steps["delete_stripe_customer"].count == 1
    assert steps["remove_login"].count == 1
    assert steps["destroy_payload_keys"].count == 2  # the family's key and its enrollment's
    fetched = (await api.get(f"{API}/parents/{family.parent_id}/erasure", headers=admin)).json()
    assert fetched["status"] == "completed"
    assert fetched["steps"] == [step.model_dump(mode="json") for step in report.steps]

    # No table holds the family's names, email, phone or birth date; no history does either.
    assert await text_hits(sessions, who.needles()) == []
    enrollment_workflow: str = kit.enrollment_workflow_id  # type: ignore[attr-defined]
    family_workflows = (
        enrollment_workflow,
        dunning_workflow_id(family.parent_id),
        billing_workflow_id(family.parent_id),
    )
    for workflow_id in family_workflows:  # as the server keeps them
        raw = await history_bytes(temporal_client, workflow_id)
        assert b"family erased" in raw  # the history the erasure closed, read whole
        assert [n for n in who.needles() if n.encode() in raw] == [], workflow_id
        assert b"Wilhelmina" not in raw
    # The erasure's own history stays readable (the master key seals it) and names the family by id only.
    opened = await history_bytes(temporal_client, erasure_workflow_id(family.parent_id), opened=True)
    assert str(family.parent_id).encode() in opened
    assert [n for n in who.needles() if n.encode() in opened] == []
    # Read through the codec, the family's histories are shredded: their payloads can no longer be opened.
    for workflow_id in family_workflows:
        history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        codec = temporal_client.data_converter.payload_codec
        assert codec is not None
        with pytest.raises(PayloadKeyDestroyed):
            await codec.decode(list(started.input.payloads))
    # The erasure's own history replays.
    erasure_history = await temporal_client.get_workflow_handle(erasure_workflow_id(family.parent_id)).fetch_history()
    erasure_replayer = Replayer(
        workflows=[FamilyErasureWorkflow],
        workflow_runner=workflow_runner(),
        data_converter=temporal_client.data_converter,
    )
    assert (
        await erasure_replayer.replay_workflow(erasure_history, raise_on_replay_failure=False)
    ).replay_failure is None
    for workflow_id in family_workflows:
        described = await temporal_client.get_workflow_handle(workflow_id).describe()
        assert described.status is not None
        assert described.status.name == "TERMINATED"

    # localstripe no longer has the customer; the identity store no longer has the login.
    async with sessions() as session:
        account = await session.scalar(select(BillingAccount).where(col(BillingAccount.parent_id) == family.parent_id))
        assert account is not None
        assert account.stripe_customer_id is not None
        parent = await session.get(Parent, family.parent_id)
        assert parent is not None
        assert parent.user_id is not None
        user = await session.get(User, parent.user_id)
        tokens = await session.scalar(select(func.count()).where(col(RefreshToken.user_id) == parent.user_id))
        enrollment = await session.get(Enrollment, family.enrollment_id)
        audit = list(
            await session.scalars(
                select(AuditLog).where(
                    col(AuditLog.entity_id) == str(family.parent_id), col(AuditLog.action) == "update"
                )
            )
        )
    with pytest.raises(stripe.InvalidRequestError) as gone:
        await stripe_client.v1.customers.retrieve_async(account.stripe_customer_id)
    assert gone.value.http_status == 404
    listed = await stripe_client.v1.customers.list_async(params={"email": who.email})
    assert listed.data == []
    assert user is not None
    assert (user.is_active, user.password_hash, user.email.endswith("@erased.invalid"), tokens) == (
        False,
        None,
        True,
        0,
    )
    assert enrollment is not None
    assert enrollment.state == "cancelled"
    # Who did what, when, stays; what the row held does not.
    [update] = audit
    assert (update.actor_role, update.action, update.entity_type) == ("admin", "update", "parent")
    assert update.before == {"redacted": True, "fields": ["email", "first_name", "phone"]}

    # The books: the same invoices, payments and postings, and the ledger still balances.
    assert await money(sessions) == money_before
    assert money_before[2] == 0

    # Erasing again changes nothing anywhere and reports the same.
    dump = await database_dump(sessions)
    again = await erase_and_wait(api, admin, temporal_client, family.parent_id)
    assert again == report
    assert await database_dump(sessions) == dump


async def test_retention_removes_what_is_past_its_age_and_keeps_the_rest(
    settings: Settings, temporal_client: Client, sessions: SessionFactory
) -> None:
    deps = build_deps(settings, sessions, temporal_client)
    old_who, young_who = new_identity(), new_identity()
    while young_who.birth_date == old_who.birth_date:
        young_who = new_identity()
    long_ago = datetime.now(UTC) - timedelta(days=365 * settings.retention_closed_family_years + 30)
    old_family = await make_erasable_family(sessions, deps.stripe, old_who)
    young_family = await make_erasable_family(sessions, deps.stripe, young_who)
    async with transaction(sessions) as session:
        for family, when in ((old_family, long_ago), (young_family, datetime.now(UTC))):
            await session.execute(
                text("UPDATE parents SET created_at = :at WHERE id = :id"), {"at": when, "id": family.parent_id}
            )
            await session.execute(
                text("UPDATE enrollments SET state = 'completed', updated_at = :at WHERE parent_id = :id"),
                {"at": when, "id": family.parent_id},
            )
            await session.execute(
                text(
                    "UPDATE invoices SET status = 'void' WHERE status = 'open' AND billing_account_id IN "
                    "(SELECT id FROM billing_accounts WHERE parent_id = :id)"
                ),
                {"id": family.parent_id},
            )
        audit_age = datetime.now(UTC) - timedelta(days=365 * settings.retention_audit_years + 1)
        webhook_age = datetime.now(UTC) - timedelta(days=settings.retention_webhook_payload_days + 1)
        for entity_type, action in (("teacher", "update"), ("invoice", "update"), ("parent", "erase")):
            session.add(
                AuditLog(
                    occurred_at=audit_age,
                    actor_role="admin",
                    action=action,
                    entity_type=entity_type,
                    entity_id=f"old-{entity_type}",
                    after={"x": 1},
                )
            )
        session.add(AuditLog(actor_role="admin", action="update", entity_type="teacher", entity_id="young-teacher"))
        for status, when, name in (
            ("processed", webhook_age, "old-processed"),
            ("received", webhook_age, "old-received"),
            ("processed", datetime.now(UTC), "young-processed"),
        ):
            session.add(
                StripeEvent(
                    stripe_event_id=name,
                    type="customer.updated",
                    payload={
                        "id": name,
                        "type": "customer.updated",
                        "data": {"object": {"id": "cus_x", "email": f"{name}@x.example"}},
                    },
                    status=status,
                    received_at=when,
                )
            )
    retention_id = f"retention-{uuid.uuid4()}"
    async with dunning_worker(temporal_client, deps):
        result = await temporal_client.execute_workflow(
            RETENTION_WORKFLOW,
            RetentionRequest(),
            id=retention_id,
            task_queue=settings.task_queue,
            result_type=RetentionReport,
        )
    replayer = Replayer(
        workflows=[RetentionWorkflow], workflow_runner=workflow_runner(), data_converter=temporal_client.data_converter
    )
    history = await temporal_client.get_workflow_handle(retention_id).fetch_history()
    assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None
    assert result.families_erased == 1
    assert result.audit_rows_deleted >= 1
    assert result.webhook_payloads_blanked >= 1
    async with sessions() as session:
        old_parent = await session.get(Parent, old_family.parent_id)
        young_parent = await session.get(Parent, young_family.parent_id)
        audit = set(await session.scalars(select(col(AuditLog.entity_id)).where(col(AuditLog.entity_id).like("%-%"))))
        events = {e.stripe_event_id: e.payload for e in await session.scalars(select(StripeEvent))}
    assert old_parent is not None
    assert old_parent.erased_at is not None
    assert young_parent is not None
    assert young_parent.erased_at is None
    assert young_parent.email == young_who.email
    assert "old-teacher" not in audit
    assert {"old-invoice", "old-parent", "young-teacher"} <= audit  # the legal hold, and the young row
    assert "email" not in str(events["old-processed"])
    assert "old-received@x.example" in str(events["old-received"])  # not handled yet: kept whole
    assert "young-processed@x.example" in str(events["young-processed"])
    assert await text_hits(sessions, old_who.needles()) == []
    namespace = await temporal_client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=temporal_client.namespace)
    )
    assert namespace.config.workflow_execution_retention_ttl.ToTimedelta() == settings.temporal_namespace_retention
    assert {FamilyErasureWorkflow, RetentionWorkflow} <= set(WORKFLOWS)  # what the workers run
