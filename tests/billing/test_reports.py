"""The owner's money reports on the real stack: revenue for a period equals the ledger's revenue and
contra-revenue accounts, tied to the enrollment's instrument and teacher; receivables' aging buckets sum to the
trial balance's receivable; both parse as CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.client import Client

from activities.billing import BillingActivities
from core.contracts.scheduled import RecognizeLessons
from core.db import SessionFactory, transaction
from core.settings import Settings
from models import Lesson, Role
from tests.billing.conftest import BillFamily, renew_and_pay


async def _ledger(http: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, dict[str, Any]]:
    answer = await http.get("/api/v1/billing/ledger/trial-balance", headers=admin)
    assert answer.status_code == 200, answer.text
    return {account["code"]: account for account in answer.json()["accounts"]}


async def test_revenue_equals_the_ledger_and_receivables_sum_to_the_trial_balance(
    bill_family: BillFamily,
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    async with billing_worker():
        admin = await auth_headers(Role.admin)
        billed = await bill_family()
        payment = await renew_and_pay(http, sessions, billed, admin)
        # Two lessons given → their share of the subscription is earned; a partial refund is contra-revenue.
        now = datetime.now(UTC)
        async with transaction(sessions) as session:
            for hours_ago in (3, 2):
                start = now - timedelta(hours=hours_ago)
                session.add(
                    Lesson(
                        kind="regular",
                        status="completed",
                        attendance="present",
                        teacher_id=billed.family.teacher_id,
                        student_id=billed.family.student_ids[0],
                        enrollment_id=billed.subscription.enrollment_id,
                        starts_at=start,
                        ends_at=start + timedelta(minutes=30),
                    )
                )
        posted = await BillingActivities(settings, sessions, temporal_client).recognize_lessons(
            RecognizeLessons(limit=100)
        )
        assert posted == 2
        refund = await http.post(
            f"/api/v1/billing/payments/{payment.id}/refunds", json={"amount_minor": 1000}, headers=admin
        )
        assert refund.status_code == 201, refund.text
        # A second family whose renewal is declined leaves an open invoice: the receivable.
        declined = await bill_family("4000000000000341")
        renewal = await http.post(f"/api/v1/billing/subscriptions/{declined.subscription.id}/renewals", headers=admin)
        assert renewal.json()["status"] == "past_due", renewal.text

    ledger = await _ledger(http, admin)
    in_ledger = -sum(a["balance_minor"] for a in ledger.values() if a["type"] in ("revenue", "contra_revenue"))
    assert in_ledger > 0
    today = datetime.now(settings.timezone).date()
    period = {"period_start": str(today - timedelta(days=1)), "period_end": str(today + timedelta(days=1))}
    answer = await http.get("/api/v1/reports/revenue", params=period, headers=admin)
    assert answer.status_code == 200, answer.text
    report = answer.json()
    assert report["net_minor"] == in_ledger
    assert report["refunds_minor"] == ledger["refunds"]["balance_minor"] == 1000
    assert report["revenue_minor"] == -ledger["lesson_revenue"]["balance_minor"]
    [piano] = report["by_instrument"]
    assert (piano["key"], piano["net_minor"]) == ("piano", in_ledger)
    [teacher] = report["by_teacher"]
    assert (teacher["key"], teacher["name"]) == (str(billed.family.teacher_id), "Ada K.")
    assert sum(line["net_minor"] for line in report["by_month"]) == in_ledger
    # A period before any of it: nothing.
    earlier = {"period_start": "2020-01-01", "period_end": "2020-02-01"}
    assert (await http.get("/api/v1/reports/revenue", params=earlier, headers=admin)).json()["net_minor"] == 0

    as_csv = await http.get("/api/v1/reports/revenue.csv", params=period, headers=admin)
    assert as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert rows[0]["grouping"] == "total"
    assert int(rows[0]["net_minor"]) == in_ledger
    assert {row["grouping"] for row in rows} == {"total", "month", "instrument", "teacher"}

    receivable = ledger["accounts_receivable"]["balance_minor"]
    assert receivable > 0
    aged = (await http.get("/api/v1/reports/receivables", headers=admin)).json()
    assert aged["total_minor"] == sum(b["amount_minor"] for b in aged["buckets"]) == receivable
    assert [b["bucket"] for b in aged["buckets"]] == ["0-30", "31-60", "61-90", "90+"]
    assert (aged["buckets"][0]["invoices"], aged["buckets"][0]["amount_minor"]) == (1, receivable)
    aged_csv = await http.get("/api/v1/reports/receivables.csv", headers=admin)
    lines = list(csv.DictReader(io.StringIO(aged_csv.text)))
    assert [line["bucket"] for line in lines] == ["0-30", "31-60", "61-90", "90+", "total"]
    assert int(lines[-1]["amount_minor"]) == receivable

    future = await http.get("/api/v1/reports/receivables", params={"as_of": "2999-01-01"}, headers=admin)
    assert (future.status_code, future.json()["fields"]) == (422, {"as_of": "cannot be in the future"})
