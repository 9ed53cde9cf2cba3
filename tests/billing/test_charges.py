"""One-off charges and credits: books on the next (renewal) invoice, a fee invoiced and paid now, receipted and
refunded; a retried request charges once; bad input is a field-level 422 and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import stripe
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory
from devstack.smtp_sink import SmtpSink
from models import AuditLog, JournalEntry, Payment, Posting, Role
from tests.billing.conftest import BillFamily, ledger_problems, renew_and_pay


async def _balances(sessions: SessionFactory) -> dict[str, int]:
    async with sessions() as session:
        rows = (await session.execute(select(col(Posting.account_code), col(Posting.amount_minor)))).all()
    totals: dict[str, int] = {}
    for code, amount in rows:
        totals[code] = totals.get(code, 0) + amount
    return totals


async def _entry_kinds(sessions: SessionFactory) -> list[str]:
    async with sessions() as session:
        return list((await session.scalars(select(col(JournalEntry.kind)))).all())


async def test_books_go_on_the_next_invoice_once_and_bad_input_changes_nothing(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    async with billing_worker():
        admin = await auth_headers(Role.admin)
        billed = await bill_family()
        parent = await auth_headers(Role.parent, user_id=billed.family.user_id)
        url = f"/api/v1/billing/families/{billed.family.parent_id}/charges"

        bad = [
            {"amount_minor": 0, "description": "Books"},
            {"amount_minor": -500, "description": "Books"},
            {"amount_minor": 500, "description": "   "},
            {"amount_minor": 500, "description": "Goodwill", "kind": "credit", "when": "now"},
        ]
        refused = [await http.post(url, json=body, headers=admin) for body in bad]
        assert [r.status_code for r in refused] == [422] * 4, [r.text for r in refused]
        assert "amount_minor" in refused[0].json()["fields"]
        assert "amount_minor" in refused[1].json()["fields"]
        assert "description" in refused[2].json()["fields"]
        assert "when" in refused[3].json()["fields"]
        assert (await http.post(url, json={"amount_minor": 500, "description": "x"}, headers=parent)).status_code == 403
        pending = await stripe_client.v1.invoice_items.list_async(params={"customer": billed.customer_id})
        assert pending.data == []

        key = {"Idempotency-Key": str(uuid.uuid4())}
        books = {"amount_minor": 2500, "description": "Piano books"}
        first = await http.post(url, json=books, headers={**admin, **key})
        again = await http.post(url, json=books, headers={**admin, **key})
        assert first.status_code == again.status_code == 201, first.text
        assert first.json() == again.json()
        assert first.json()["status"] == "pending"
        credit = await http.post(
            url, json={"amount_minor": 1000, "description": "Goodwill", "kind": "credit"}, headers=admin
        )
        assert credit.status_code == 201, credit.text
        assert credit.json()["amount_minor"] == -1000
        pending = await stripe_client.v1.invoice_items.list_async(params={"customer": billed.customer_id})
        assert sorted(i.amount for i in pending.data) == [-1000, 2500]
        # Each request is audited once (a retry adds no row), with its amount, description and when.
        async with sessions() as session:
            audit = (await session.scalars(select(AuditLog).where(col(AuditLog.entity_type) == "charge"))).all()
        rows = sorted(
            (
                r.action,
                r.entity_id,
                (r.after or {})["amount_minor"],
                (r.after or {})["description"],
                (r.after or {})["when"],
            )
            for r in audit
        )
        assert rows == sorted(
            [
                ("charge", first.json()["request_id"], 2500, "Piano books", "next_invoice"),
                ("credit", credit.json()["request_id"], -1000, "Goodwill", "next_invoice"),
            ]
        )
        assert all(r.actor_role == "admin" and r.occurred_at is not None and r.request_id for r in audit)

        payment = await renew_and_pay(http, sessions, billed, admin)

    plan_price = billed.subscription.amount_minor
    assert payment.amount_minor == plan_price + 2500 - 1000
    pending = await stripe_client.v1.invoice_items.list_async(params={"customer": billed.customer_id})
    assert pending.data == []
    balances = await _balances(sessions)
    assert balances["other_revenue"] == -2500
    assert balances["credits_given"] == 1000
    kinds = await _entry_kinds(sessions)
    assert kinds.count("charge_earned") == 1
    assert kinds.count("credit_given") == 1
    assert await ledger_problems(sessions) == {}


async def test_a_fee_charged_now_is_paid_receipted_and_refundable(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
    smtp_sink: SmtpSink,
) -> None:
    async with billing_worker():
        admin = await auth_headers(Role.admin)
        billed = await bill_family()
        url = f"/api/v1/billing/families/{billed.family.parent_id}/charges"
        key = {"Idempotency-Key": str(uuid.uuid4())}
        fee = {"amount_minor": 4000, "description": "Spring recital fee", "when": "now"}
        charged = await http.post(url, json=fee, headers={**admin, **key})
        assert charged.status_code == 201, charged.text
        assert charged.json()["status"] == "paid"
        retried = await http.post(url, json=fee, headers={**admin, **key})
        assert retried.json() == charged.json()
        await smtp_sink.wait_for_messages(billed.family.email, 1)

        async with sessions() as session:
            payments = (
                await session.scalars(select(Payment).where(col(Payment.billing_account_id) == billed.account.id))
            ).all()
        assert [(p.amount_minor, p.status) for p in payments] == [(4000, "succeeded")]
        refund = await http.post(
            f"/api/v1/billing/payments/{payments[0].id}/refunds", json={"reason": "recital cancelled"}, headers=admin
        )
        assert refund.status_code == 201, refund.text
        assert refund.json()["amount_minor"] == 4000

    invoice = await stripe_client.v1.invoices.retrieve_async(charged.json()["stripe_invoice_id"])
    assert (invoice.amount_paid, invoice.to_dict().get("subscription")) == (4000, None)
    balances = await _balances(sessions)
    assert balances["other_revenue"] == -4000
    assert balances["refunds"] == 4000
    assert balances["deferred_revenue"] == 0
    assert await ledger_problems(sessions) == {}
