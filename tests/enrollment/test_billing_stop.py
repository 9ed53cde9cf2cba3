"""Billing's stop route on a live enrollment goes through the enrollment's cancel: its workflow's compensations cancel
the lessons, give the teacher's place back and tell billing, and the enrollment ends cancelled."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from temporalio.client import Client

from core.db import SessionFactory, transaction
from core.temporal import billing_workflow_id
from models import BillingAccount, Parent, Role, Subscription
from tests.enrollment.conftest import EnrollmentWorker
from tests.enrollment.helpers import (
    billing_events,
    enroll,
    enrollment_row,
    lessons_of,
    teacher_by_email,
    wait_for_state,
)

MAYA = "maya.lindqvist@cedarheights.example"


async def _subscribed(sessions: SessionFactory, enrollment_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The billing rows billing's workflow would have made for the enrollment (the stand-in makes none)."""
    row = await enrollment_row(sessions, enrollment_id)
    assert row.parent_id is not None
    assert row.student_id is not None
    async with transaction(sessions) as session:
        account = BillingAccount(
            parent_id=row.parent_id,
            stripe_customer_id=f"cus_{uuid.uuid4().hex[:12]}",
            workflow_id=billing_workflow_id(row.parent_id),
        )
        session.add(account)
        await session.flush()
        sub = Subscription(
            billing_account_id=account.id,
            student_id=row.student_id,
            enrollment_id=row.id,
            stripe_subscription_id=f"sub_{uuid.uuid4().hex[:12]}",
            stripe_plan_id="cedar-piano-30-month-14000",
            status="trialing",
            interval="month",
            amount_minor=14000,
        )
        session.add(sub)
    return row.parent_id, sub.id


async def test_the_stop_route_cancels_a_live_enrollment_through_its_workflow(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    auth_headers: Callable[..., Any],
    temporal_client: Client,
) -> None:
    admin = await auth_headers(Role.admin)
    async with enrollment_worker():
        enrollment_id = await enroll(api)
        await wait_for_state(api, enrollment_id, "demo_scheduled", "awaiting_outcome")
        answer = await api.post(
            f"/api/v1/enrollments/{enrollment_id}/demo-outcome", json={"outcome": "continue"}, headers=admin
        )
        assert answer.status_code == 200, answer.text
        await wait_for_state(api, enrollment_id, "active")
        parent_id, subscription_id = await _subscribed(sessions, enrollment_id)
        async with sessions() as session:
            parent = await session.get(Parent, parent_id)
        assert parent is not None
        headers = await auth_headers(Role.parent, user_id=parent.user_id)
        stop = await api.post(
            f"/api/v1/billing/families/{parent_id}/subscriptions/{subscription_id}/stop",
            json={"reason": "moving away"},
            headers=headers,
        )
        assert stop.status_code == 202, stop.text
        closed = await wait_for_state(api, enrollment_id, "cancelled")
        events = await billing_events(temporal_client, parent_id, 2)
        now = datetime.now(UTC)

    assert stop.json()["via"] == "enrollment"
    assert stop.json()["stopped"] == ["lessons", "teacher_place", "billing", "enrollment"]
    assert closed["failure_reason"] == "cancelled by the family"
    assert events[-1] == f"stopped:{enrollment_id}"
    assert (await teacher_by_email(sessions, MAYA)).active_students == 0
    assert [lesson for lesson in await lessons_of(sessions, enrollment_id, "scheduled") if lesson.starts_at > now] == []
    assert await lessons_of(sessions, enrollment_id, "cancelled") != []
