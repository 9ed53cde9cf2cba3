"""The API's changes to a family's billing are updates whose id comes from the request's ``Idempotency-Key``: a
retried request gets the first one's answer instead of acting again."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx

from core.db import SessionFactory
from models import Invoice, Role
from tests.billing.conftest import BillFamily, count


async def test_a_retried_renewal_with_the_same_key_answers_the_first_renewal(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    async with billing_worker():
        admin = await auth_headers(Role.admin)
        billed = await bill_family()
        url = f"/api/v1/billing/subscriptions/{billed.subscription.id}/renewals"
        key = {"Idempotency-Key": str(uuid.uuid4())}
        first = await http.post(url, headers={**admin, **key})
        assert first.status_code == 201, first.text
        retried = await http.post(url, headers={**admin, **key})
        assert retried.status_code == 201, retried.text
        assert retried.json() == first.json()
        assert await count(sessions, Invoice, Invoice.billing_account_id == billed.account.id) == 1

        fresh = await http.post(url, headers=admin)  # a new request: the next period
        assert fresh.status_code == 201, fresh.text
        assert fresh.json()["stripe_invoice_id"] != first.json()["stripe_invoice_id"]
        assert await count(sessions, Invoice, Invoice.billing_account_id == billed.account.id) == 2
