"""The nightly reconciliation in pages of billing accounts: a retried page resumes from its heartbeat past the
families already done, and the report counts every difference while listing a bounded sample."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment

from activities.reconciliation import ReconciliationActivities
from core.contracts.scheduled import (
    RECONCILIATION_WORKFLOW,
    REPORT_SAMPLE_SIZE,
    ReconcilePage,
    ReconcilePageResult,
    ReconcileRequest,
    ReconciliationReport,
)
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.stripe import create_stripe_client
from models import BillingAccount, Invoice
from tests.dunning.conftest import make_family
from workers.main import build_deps

GHOSTS = REPORT_SAMPLE_SIZE + 5


async def _accounts(sessions: SessionFactory, settings: Settings, ghosts: list[int]) -> list[BillingAccount]:
    """One family per entry, each with a Stripe customer and that many invoices of ours Stripe never heard of
    (each a difference left for a person), in the order reconciliation pages them."""
    stripe_client = create_stripe_client(settings)
    accounts = []
    for _ in ghosts:
        family = await make_family(sessions, lessons=0)
        customer = await stripe_client.v1.customers.create_async(params={"email": family.email})
        async with transaction(sessions) as session:
            account = BillingAccount(
                parent_id=family.parent_id, stripe_customer_id=customer.id, workflow_id=f"family-billing-{uuid.uuid4()}"
            )
            session.add(account)
        accounts.append(account)
    accounts.sort(key=lambda a: a.id)
    async with transaction(sessions) as session:
        for account, count in zip(accounts, ghosts, strict=True):
            session.add_all(
                Invoice(
                    billing_account_id=account.id,
                    stripe_invoice_id=f"in_ghost_{uuid.uuid4().hex[:12]}",
                    status="open",
                    amount_due_minor=500,
                )
                for _ in range(count)
            )
    return accounts


async def test_a_retried_page_resumes_past_the_families_its_heartbeat_recorded(
    make_settings: Callable[..., Settings], sessions: SessionFactory, temporal_client: Client
) -> None:
    settings = make_settings(reconciliation_page_size=2)
    first, second, third = await _accounts(sessions, settings, [1, GHOSTS, 1])
    activities = ReconciliationActivities(settings, sessions, temporal_client, create_stripe_client(settings))
    env = ActivityEnvironment()
    beats: list[ReconcilePageResult] = []
    env.on_heartbeat = lambda *details: beats.append(ReconcilePageResult.model_validate(details[0]))
    # The page's first attempt checked the first family, heartbeat, and then its worker died.
    done = ReconcilePageResult(
        families=1, differences_total=1, unrepaired_total=1, by_kind={"unknown_to_stripe": 1}, last_account_id=first.id
    )
    env.info = dataclasses.replace(env.info, heartbeat_details=[done.model_dump(mode="json")])

    page = await env.run(activities.reconcile_page, ReconcilePage())

    assert [beat.last_account_id for beat in beats] == [second.id]  # the first family is not checked again
    assert (page.families, page.last_account_id, page.more) == (2, second.id, True)  # the page keeps its size
    assert (page.differences_total, page.unrepaired_total) == (1 + GHOSTS, 1 + GHOSTS)
    assert page.by_kind == {"unknown_to_stripe": 1 + GHOSTS}
    assert len(page.differences) == REPORT_SAMPLE_SIZE  # bounded: the rest are counted and logged
    assert {d.parent_id for d in page.differences} == {second.parent_id}

    rest = await ActivityEnvironment().run(
        activities.reconcile_page, ReconcilePage(after_account_id=page.last_account_id)
    )
    assert (rest.families, rest.last_account_id, rest.more) == (1, third.id, False)
    assert [d.parent_id for d in rest.differences] == [third.parent_id]


async def test_the_workflow_pages_through_every_family_with_a_bounded_report(
    make_settings: Callable[..., Settings],
    sessions: SessionFactory,
    temporal_client: Client,
    run_worker: Callable[..., AbstractAsyncContextManager[Any]],
) -> None:
    settings = make_settings(reconciliation_page_size=2)
    await _accounts(sessions, settings, [1, GHOSTS, 0, 1, 2])
    async with run_worker(build_deps(settings, sessions, temporal_client)):
        handle = await temporal_client.start_workflow(
            RECONCILIATION_WORKFLOW,
            ReconcileRequest(),
            id=f"reconcile-{uuid.uuid4()}",
            task_queue=settings.task_queue,
            result_type=ReconciliationReport,
        )
        report = await handle.result()
    assert (report.families, report.pages) == (5, 3)
    assert report.invoices_checked == 0  # Stripe has none of these invoices
    assert (report.differences_total, report.unrepaired_total) == (4 + GHOSTS, 4 + GHOSTS)
    assert report.by_kind == {"unknown_to_stripe": 4 + GHOSTS}
    assert len(report.differences) == REPORT_SAMPLE_SIZE
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
