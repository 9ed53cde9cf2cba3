"""No free text in billing's histories: an admin's refund reason and a stop's reason stay in the database (the
workflow carries the audit row's id), and Stripe's hosted invoice link never enters a history, read through the
codec."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import select
from sqlmodel import col
from stripe._invoice_service import InvoiceService
from temporalio.client import Client
from temporalio.worker import Worker

from api.pages.web import SESSION_COOKIE
from core.db import SessionFactory
from core.payload_codec import EncryptionCodec
from core.settings import Settings
from core.stripe import create_stripe_client
from core.temporal import billing_workflow_id, dunning_workflow_id
from core.tokens import issue_access_token
from models import AuditLog, Invoice, Refund, Role, Subscription
from tests.billing.conftest import billed_family, renew_and_pay, served_api  # noqa: F401 (served_api: a fixture)
from tests.privacy_codec.test_histories import opened
from tests.waiting import eventually

HOSTED = "https://invoice.stripe.test/i/acct_cedar"
REFUND_REASON = "Refund for Oona Pettersson: her mother lost her job"
STOP_REASON = "Moving to Tromsø with Oona's grandmother"


def signed_in(settings: Settings, user_id: uuid.UUID, email: str) -> dict[str, str]:
    """A signed-in parent's browser: its session cookie."""
    token = issue_access_token(settings, user_id, email, Role.parent, uuid.uuid4())
    return {"Cookie": f"{SESSION_COOKIE}={token}:"}


@pytest.fixture
def hosted_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stripe gives every invoice a hosted page (localstripe has none): its link is what must stay out."""
    original = InvoiceService.retrieve_async

    async def with_page(self: InvoiceService, invoice: str, *args: Any, **kwargs: Any) -> Any:
        found = await original(self, invoice, *args, **kwargs)
        found["hosted_invoice_url"] = f"{HOSTED}/{invoice}"
        return found

    monkeypatch.setattr(InvoiceService, "retrieve_async", with_page)


@pytest.fixture
async def http(served_api: str) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    async with httpx.AsyncClient(base_url=served_api, timeout=30) as client:
        yield client


async def test_billing_histories_carry_no_reason_and_no_hosted_invoice_link(
    hosted_pages: None,
    http: httpx.AsyncClient,
    run_worker: Callable[..., AbstractAsyncContextManager[Worker]],
    sessions: SessionFactory,
    settings: Settings,
    auth_headers: Callable[..., Any],
    temporal_client: Client,
) -> None:
    stripe_client: stripe.StripeClient = create_stripe_client(settings)
    admin = await auth_headers(Role.admin)
    async with run_worker():
        paying = await billed_family(sessions, settings, temporal_client, stripe_client)
        payment = await renew_and_pay(http, sessions, paying, admin)
        refunded = await http.post(
            f"/api/v1/billing/payments/{payment.id}/refunds",
            json={"amount_minor": 2000, "reason": REFUND_REASON},
            headers={**admin, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert refunded.status_code == 201, refunded.text
        parent = await auth_headers(Role.parent, user_id=paying.family.user_id)
        stopped = await http.post(
            f"/api/v1/billing/families/{paying.family.parent_id}/subscriptions/{paying.subscription.id}/stop",
            json={"reason": STOP_REASON},
            headers=parent,
        )
        assert stopped.status_code == 202, stopped.text

        async def stopping() -> bool:
            async with sessions() as session:
                sub = await session.get(Subscription, paying.subscription.id, populate_existing=True)
            return sub is not None and (sub.cancel_at_period_end or sub.status == "canceled")

        await eventually(stopping, what="the stop carried out by billing")

        declined = await billed_family(sessions, settings, temporal_client, stripe_client, "4000000000000341")
        renewal = await http.post(f"/api/v1/billing/subscriptions/{declined.subscription.id}/renewals", headers=admin)
        assert renewal.json()["status"] == "past_due", renewal.text
        dunning = temporal_client.get_workflow_handle(dunning_workflow_id(declined.family.parent_id))
        await eventually(dunning.describe, what="dunning started by the failed invoice")
        histories = {
            name: await temporal_client.get_workflow_handle(workflow_id).fetch_history()
            for name, workflow_id in {
                "billing (refund, stop)": billing_workflow_id(paying.family.parent_id),
                "billing (failed invoice)": billing_workflow_id(declined.family.parent_id),
                "dunning (failed invoice)": dunning_workflow_id(declined.family.parent_id),
            }.items()
        }

    codec = temporal_client.data_converter.payload_codec
    assert isinstance(codec, EncryptionCodec)
    for name, history in histories.items():
        text = await opened(codec, history)
        for needle in (REFUND_REASON, STOP_REASON, "Oona", HOSTED, "hosted_invoice_url", "confirm_url"):
            assert needle.encode() not in text, (name, needle)
    # What the codec opens is the real content: the failed invoice is there, and the refund's audit row's id.
    async with sessions() as session:
        invoice = await session.scalar(select(Invoice).where(col(Invoice.billing_account_id) == declined.account.id))
        refund = await session.scalar(select(Refund).where(col(Refund.payment_id) == payment.id))
        notes = list(await session.scalars(select(AuditLog).where(col(AuditLog.action).in_(("refund", "stop")))))
    assert invoice is not None
    assert invoice.stripe_invoice_id.encode() in await opened(codec, histories["billing (failed invoice)"])
    # The reasons are kept in the database: the refund's row and the audit rows the histories point to.
    assert refund is not None
    assert refund.reason == REFUND_REASON
    assert sorted(str((row.after or {})["reason"]) for row in notes) == sorted([REFUND_REASON, STOP_REASON])
    billing_text = await opened(codec, histories["billing (refund, stop)"])
    assert all(str(row.id).encode() in billing_text for row in notes)

    # The email's link: Cedar's page looks Stripe's hosted page up for the invoice's own family and redirects.
    confirm = f"/family/invoices/{invoice.stripe_invoice_id}/confirm"
    owner = signed_in(settings, declined.family.user_id, declined.family.email)
    sent_on = await http.get(confirm, headers=owner)
    assert sent_on.status_code == 303, sent_on.text
    assert sent_on.headers["location"] == f"{HOSTED}/{invoice.stripe_invoice_id}"
    other = signed_in(settings, paying.family.user_id, paying.family.email)
    http.cookies.clear()
    assert (await http.get(confirm, headers=other)).status_code == 404
    async with sessions() as session:
        paid = await session.scalar(select(Invoice).where(col(Invoice.billing_account_id) == paying.account.id))
    assert paid is not None
    http.cookies.clear()
    settled = await http.get(f"/family/invoices/{paid.stripe_invoice_id}/confirm", headers=other)
    assert settled.status_code == 303, settled.text
    assert settled.headers["location"] == "/family/card?notice=nothing_to_confirm"
