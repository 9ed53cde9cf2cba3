"""The PaymentMethod is checked with Stripe first: an unknown, unusable or declined one fails the enrollment
cleanly, before anything is made."""

from __future__ import annotations

import httpx
import pytest
import stripe
from stripe.params import PaymentMethodCreateParamsCard

from core.db import SessionFactory
from core.settings import Settings
from core.stripe import create_stripe_client
from models import Parent, User
from tests.enrollment.conftest import EnrollmentWorker
from tests.enrollment.helpers import application, count_rows, enroll, enrollment_row, wait_for_state


async def card(settings: Settings, number: str, exp_year: int = 2030) -> str:
    client: stripe.StripeClient = create_stripe_client(settings)
    details: PaymentMethodCreateParamsCard = {"number": number, "exp_month": 1, "exp_year": exp_year, "cvc": "123"}
    return str((await client.v1.payment_methods.create_async(params={"type": "card", "card": details})).id)


@pytest.mark.parametrize(
    ("payment_method", "reason"),
    [
        ("pm_unknown000000", "the payment method does not exist in Stripe"),
        ("expired", "the card has expired"),
        # The bank refuses these when asked to keep them for later (localstripe: the same test cards).
        ("4000000000000002", "the card was declined (generic_decline)"),
        ("4000000000009995", "the card was declined (insufficient_funds)"),
        ("4000000000000069", "the card was declined (expired_card)"),
    ],
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
    if payment_method == "expired":
        method = await card(settings, "4242424242424242", exp_year=2020)
    elif payment_method.isdigit():
        method = await card(settings, payment_method)
    else:
        method = payment_method
    body = application(payment_method_id=method)
    async with enrollment_worker():
        enrollment_id = await enroll(api, body)
        failed = await wait_for_state(api, enrollment_id, "failed")
    assert failed["failure_reason"] == reason
    assert [s["state"] for s in failed["steps"]] == ["received", "failed"]
    row = await enrollment_row(sessions, enrollment_id)
    assert row.parent_id is None
    assert row.student_id is None
    assert row.completed_at is not None
    email = body["parent"]["email"]
    assert await count_rows(sessions, Parent, Parent.email == email) == 0
    assert await count_rows(sessions, User, User.email == email) == 0


@pytest.mark.parametrize("number", ["4242424242424242", "4000002760003184"])  # the second: 3-D Secure
async def test_a_card_the_bank_accepts_or_wants_confirmed_goes_on_and_stays_free_for_billing(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    settings: Settings,
    number: str,
) -> None:
    method = await card(settings, number)
    async with enrollment_worker():
        enrollment_id = await enroll(api, application(payment_method_id=method))
        scheduled = await wait_for_state(api, enrollment_id, "demo_scheduled", "failed")
    assert scheduled["state"] == "demo_scheduled", scheduled.get("failure_reason")
    # The check gave the card to no customer: billing attaches it to the family's later.
    client: stripe.StripeClient = create_stripe_client(settings)
    customer = await client.v1.customers.create_async(params={"email": "family@example.org"})
    attached = await client.v1.payment_methods.attach_async(method, params={"customer": customer.id})
    assert attached.customer == customer.id


async def test_a_parent_whose_card_was_declined_enrolls_with_another(
    api: httpx.AsyncClient, demo_data: None, enrollment_worker: EnrollmentWorker, settings: Settings
) -> None:
    declined = application(payment_method_id=await card(settings, "4000000000000002"))
    async with enrollment_worker():
        first = await wait_for_state(api, await enroll(api, declined), "failed")
        assert first["failure_reason"] == "the card was declined (generic_decline)"
        # The same form again, with another card: the failed enrollment holds nothing back.
        retried = {**declined, "payment_method_id": await card(settings, "4242424242424242")}
        second = await wait_for_state(api, await enroll(api, retried), "demo_scheduled", "failed")
    assert second["state"] == "demo_scheduled", second.get("failure_reason")
