"""The PaymentMethod is checked in Stripe first: an unknown or unusable one fails the enrollment cleanly."""

from __future__ import annotations

import httpx
import pytest
import stripe

from core.db import SessionFactory
from core.settings import Settings
from core.stripe import create_stripe_client
from models import Parent, User
from tests.enrollment.conftest import EnrollmentWorker
from tests.enrollment.helpers import application, count_rows, enroll, enrollment_row, wait_for_state


async def expired_card(settings: Settings) -> str:
    client: stripe.StripeClient = create_stripe_client(settings)
    card = {"number": "4242424242424242", "exp_month": 1, "exp_year": 2020, "cvc": "123"}
    return str((await client.v1.payment_methods.create_async(params={"type": "card", "card": card})).id)


@pytest.mark.parametrize(
    ("payment_method", "reason"),
    [("pm_unknown000000", "the payment method does not exist in Stripe"), ("expired", "the card has expired")],
)
async def test_an_unusable_payment_method_fails_before_anything_is_made(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    settings: Settings,
    payment_method: str,
    reason: str,
) -> None:
    method = await expired_card(settings) if payment_method == "expired" else payment_method
    body = application(payment_method_id=method)
    async with enrollment_worker():
        enrollment_id = await enroll(api, body)
        failed = await wait_for_state(api, enrollment_id, "failed")
    assert failed["failure_reason"] == reason
    assert [s["state"] for s in failed["steps"]] == ["received", "failed"]
    row = await enrollment_row(sessions, enrollment_id)
    assert row.parent_id is None and row.student_id is None and row.completed_at is not None
    email = body["parent"]["email"]
    assert await count_rows(sessions, Parent, Parent.email == email) == 0
    assert await count_rows(sessions, User, User.email == email) == 0
