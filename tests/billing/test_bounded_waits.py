"""Billing and dunning requests answer in bounded time: a workflow that cannot answer is a 504 after the
configured wait, not a hung request; and a refused card says why once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest
from temporalio.client import Client
from temporalio.worker import Worker

from api.main import create_app
from core.contracts.billing import FAMILY_BILLING_WORKFLOW, FamilyBillingInput
from core.contracts.dunning import FAMILY_DUNNING_WORKFLOW, FamilyDunningInput
from core.db import SessionFactory
from core.settings import Settings
from core.temporal import billing_workflow_id, dunning_workflow_id
from models import Role
from tests.billing.conftest import family_with_customer

# Only a guard against a hung request: the default update timeout (15 s) would exceed it, the test's (1 s) not.
HANG_GUARD_SECONDS = 10


@pytest.fixture
async def impatient_api(make_settings: Callable[..., Settings]) -> AsyncIterator[httpx.AsyncClient]:
    """The app on this test's database and queue, waiting on Temporal one second at most."""
    settings = make_settings(
        temporal_update_timeout=timedelta(seconds=1),
        temporal_query_timeout=timedelta(seconds=1),
        api_retry_after=timedelta(seconds=3),
    )
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cedar.test") as client:
            yield client


@asynccontextmanager
async def workflow_without_worker(
    client: Client, workflow: str, argument: Any, workflow_id: str
) -> AsyncIterator[None]:
    """A running workflow on a task queue no worker polls: it can take no update or query."""
    handle = await client.start_workflow(workflow, argument, id=workflow_id, task_queue=f"nobody-{uuid.uuid4()}")
    try:
        yield
    finally:
        await handle.terminate("test over")


async def test_a_card_change_the_workflow_cannot_take_answers_504(
    impatient_api: httpx.AsyncClient,
    sessions: SessionFactory,
    temporal_client: Client,
    auth_headers: Callable[..., Any],
) -> None:
    admin = await auth_headers(Role.admin)
    parent_id, _ = await family_with_customer(sessions)
    billing = FamilyBillingInput(parent_id=parent_id)
    async with workflow_without_worker(
        temporal_client, FAMILY_BILLING_WORKFLOW, billing, billing_workflow_id(parent_id)
    ):
        response = await asyncio.wait_for(
            impatient_api.put(
                f"/api/v1/billing/families/{parent_id}/card",
                json={"payment_method_id": "pm_card_visa"},
                headers=admin,
            ),
            HANG_GUARD_SECONDS,
        )
    assert response.status_code == 504, response.text
    body = response.json()
    assert body["error"] == "timeout"
    assert body["fields"] == {}
    # A change may still be made after a timeout: the caller is told to look before resending, not to retry.
    assert "check before sending it again" in body["detail"]
    assert "Retry-After" not in response.headers


async def test_a_dunning_state_the_workflow_cannot_answer_is_a_504_to_retry(
    impatient_api: httpx.AsyncClient,
    sessions: SessionFactory,
    temporal_client: Client,
    auth_headers: Callable[..., Any],
) -> None:
    admin = await auth_headers(Role.admin)
    parent_id, _ = await family_with_customer(sessions)
    dunning = FamilyDunningInput(parent_id=parent_id)
    async with workflow_without_worker(
        temporal_client, FAMILY_DUNNING_WORKFLOW, dunning, dunning_workflow_id(parent_id)
    ):
        response = await asyncio.wait_for(
            impatient_api.get(f"/api/v1/dunning/families/{parent_id}", headers=admin), HANG_GUARD_SECONDS
        )
    assert response.status_code == 504, response.text
    assert response.json()["error"] == "timeout"
    # A read is safe to repeat: the answer says when.
    assert response.headers["Retry-After"] == "3"


async def test_a_rejected_card_says_why_once(
    api: httpx.AsyncClient,
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    auth_headers: Callable[..., Any],
    billing_worker: Callable[..., AbstractAsyncContextManager[Worker]],
) -> None:
    admin = await auth_headers(Role.admin)
    parent_id, _ = await family_with_customer(sessions)
    await temporal_client.start_workflow(
        FAMILY_BILLING_WORKFLOW,
        FamilyBillingInput(parent_id=parent_id),
        id=billing_workflow_id(parent_id),
        task_queue=settings.task_queue,
    )
    async with billing_worker():
        # A payment method Stripe has never heard of: Stripe answers 404, billing refuses the card.
        response = await api.put(
            f"/api/v1/billing/families/{parent_id}/card",
            json={"payment_method_id": f"pm_missing_{uuid.uuid4().hex[:10]}"},
            headers=admin,
        )
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert "CardRejected" not in detail
    assert detail.count("Stripe refused this payment method") == 1
    assert "collect the card again" in detail
