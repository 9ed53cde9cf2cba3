"""Billing that follows the lessons: Stripe's cycle is anchored to Cedar's periods, each period invoice is brought
to the tuition rule's amount while a draft (a prorated first and last month, nothing after the last lesson) by the
same handler for Stripe's own invoices and development renewals, a month without lessons raises no invoice (a trial
in Stripe from the last lesson before it, skipped by renewals), a stop gives back the unheld lessons once, the stop
route closes an enrollment whose workflow is gone, and the ledger's deferred revenue is zero once every lesson is
given."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import select, update
from sqlmodel import col
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from activities.billing import BillingActivities
from core.contracts.billing import SIGNAL_LESSONS_BOOKED, SIGNAL_STUDENT_STOPPED, LessonsBooked, StudentStopped
from core.contracts.scheduled import RecognizeLessons
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.temporal import data_converter
from domain.calendar import local_to_utc
from models import Enrollment, Invoice, Lesson, Payment, Refund, Role, StripeEvent, Subscription, Teacher
from tests.billing.conftest import (
    Family,
    card,
    count,
    customer_events,
    ledger_problems,
    make_enrollment,
    make_family,
    post_event,
    start_student,
    started_message,
    stripe_event,
)
from tests.waiting import eventually
from workers.main import build_deps
from workflows.billing import FamilyBillingWorkflow

HISTORIES = Path(__file__).parent / "histories"
PRICE = 14000  # piano, 30 minutes, monthly (scripts/reference_data.py)


async def _replays(history: WorkflowHistory, converter: DataConverter) -> None:
    # The SDK's replayer waits forever on a run with no workflow task done yet (one just continued as new).
    done = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED
    assert any(e.event_type == done for e in history.events), "a run with no workflow task done: nothing to replay"
    await Replayer(workflows=[FamilyBillingWorkflow], data_converter=converter).replay_workflow(history)


async def _runs(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of the workflow that has done a workflow task, newest first, along its continue-as-new chain."""
    histories, run_id = [], None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        if any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in history.events):
            histories.append(history)
        run_id = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not run_id:
            return histories


def _month(first: date, ahead: int) -> date:
    index = first.year * 12 + first.month - 1 + ahead
    return date(index // 12, index % 12 + 1, 1)


@dataclass
class Calendar:
    """Weekly lessons: two in month A (from the 15th), four in A+1, none in A+2, two in A+3."""

    months: list[date]
    starts: list[datetime]

    @property
    def keys(self) -> list[str]:
        return [m.strftime("%Y-%m") for m in self.months]


def calendar(settings: Settings) -> Calendar:
    today = datetime.now(settings.timezone).date()
    a = _month(today.replace(day=1), 2)
    months = [a, _month(a, 1), _month(a, 2), _month(a, 3)]
    days = [
        a.replace(day=15),
        a.replace(day=22),
        *(months[1].replace(day=d) for d in (1, 8, 15, 22)),
        months[3].replace(day=5),
        months[3].replace(day=12),
    ]
    return Calendar(months, [local_to_utc(d, time(16), settings.timezone) for d in days])


@dataclass
class Student:
    family: Family
    enrollment_id: uuid.UUID
    subscription: Subscription
    handle: WorkflowHandle[Any, Any]
    calendar: Calendar


async def book(sessions: SessionFactory, family: Family, enrollment_id: uuid.UUID, starts: list[datetime]) -> None:
    async with transaction(sessions) as session:
        session.add_all(
            Lesson(
                kind="regular",
                teacher_id=family.teacher_id,
                student_id=family.student_ids[0],
                enrollment_id=enrollment_id,
                starts_at=start,
                ends_at=start + timedelta(minutes=30),
            )
            for start in starts
        )


async def student_with_lessons(
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    booked: int | None = None,
) -> Student:
    """A monthly piano student whose lessons (the first ``booked`` of the calendar's) are booked, as enrollment books
    them, before billing starts."""
    family = await make_family(sessions)
    method = await card(stripe_client)
    enrollment_id = await make_enrollment(sessions, family, family.student_ids[0], method)
    lessons = calendar(settings)
    async with transaction(sessions) as session:
        teacher = await session.get(Teacher, family.teacher_id)
        assert teacher is not None
        teacher.active_students = 1
    await book(sessions, family, enrollment_id, lessons.starts[:booked])
    message = started_message(
        family, enrollment_id, family.student_ids[0], method, first_regular_lesson_at=lessons.starts[0]
    )
    handle = await start_student(temporal_client, settings, message)

    async def subscribed() -> Subscription | None:
        async with sessions() as session:
            return await session.scalar(select(Subscription).where(col(Subscription.enrollment_id) == enrollment_id))

    sub = await eventually(subscribed, what="subscription")
    return Student(family, enrollment_id, sub, handle, lessons)


async def renew(http: httpx.AsyncClient, student: Student, admin: dict[str, str]) -> httpx.Response:
    return await http.post(f"/api/v1/billing/subscriptions/{student.subscription.id}/renewals", headers=admin)


async def invoices_in_stripe(stripe_client: stripe.StripeClient, student: Student) -> list[int]:
    assert student.subscription.stripe_subscription_id is not None
    page = await stripe_client.v1.invoices.list_async(
        params={"subscription": student.subscription.stripe_subscription_id, "limit": 100}
    )
    return sorted(int(i.amount_due) for i in page.data)


async def give_lessons(sessions: SessionFactory, settings: Settings, temporal_client: Client, student: Student) -> None:
    """Every lesson still booked is given (completed) and the catch-up's recognition posts what it earns."""
    async with transaction(sessions) as session:
        await session.execute(
            update(Lesson)
            .where(col(Lesson.enrollment_id) == student.enrollment_id, col(Lesson.status) == "scheduled")
            .values(status="completed")
        )
    await BillingActivities(settings, sessions, temporal_client).recognize_lessons(RecognizeLessons(limit=100))


async def balances(http: httpx.AsyncClient, admin: dict[str, str]) -> dict[str, int]:
    trial = (await http.get("/api/v1/billing/ledger/trial-balance", headers=admin)).json()
    assert trial["total_minor"] == 0
    return {a["code"]: a["balance_minor"] for a in trial["accounts"]}


@pytest.mark.parametrize(
    ("rule", "amounts"),
    [
        # A prorated first month (2 of 4 lessons), a full month, (the month without lessons skipped), a prorated
        # last month.
        ("prorated", [7000, PRICE, 7000]),
        ("monthly_flat", [PRICE, PRICE, PRICE]),
        ("per_lesson", [7000, PRICE, 7000]),
    ],
)
async def test_renewals_bill_the_lesson_periods_by_the_rule_and_nothing_after_the_last_lesson(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    make_settings: Callable[..., Settings],
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
    rule: str,
    amounts: list[int],
) -> None:
    settings = make_settings(tuition_rule=rule)
    async with billing_worker(build_deps(settings, sessions, temporal_client)):
        admin = await auth_headers(Role.admin)
        student = await student_with_lessons(sessions, settings, temporal_client, stripe_client)
        answers = [await renew(http, student, admin) for _ in range(4)]
        async with sessions() as session:
            sub = await session.get(Subscription, student.subscription.id, populate_existing=True)
        assert student.subscription.stripe_subscription_id is not None
        in_stripe = await stripe_client.v1.subscriptions.retrieve_async(student.subscription.stripe_subscription_id)
        await give_lessons(sessions, settings, temporal_client, student)
        books = await balances(http, admin)

    keys = student.calendar.keys
    billed = [(a.status_code, a.json().get("period_key"), a.json().get("amount_minor")) for a in answers[:3]]
    assert billed == [(201, key, amount) for key, amount in zip([keys[0], keys[1], keys[3]], amounts, strict=True)]
    assert [a.json()["status"] for a in answers[:3]] == ["paid"] * 3
    assert answers[3].status_code == 409, answers[3].text
    assert "nothing left to bill" in answers[3].json()["detail"]
    assert await invoices_in_stripe(stripe_client, student) == sorted(amounts)
    assert sub is not None
    assert sub.status == "canceled"
    assert in_stripe.status == "canceled"
    # Every lesson given: what the invoices billed is what the lessons earned.
    assert books["deferred_revenue"] == 0
    assert books["lesson_revenue"] == -sum(amounts)
    assert books["accounts_receivable"] == 0
    assert await ledger_problems(sessions) == {}


async def test_stopping_mid_period_refunds_the_unheld_lessons_once(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    async with billing_worker():
        admin = await auth_headers(Role.admin)
        student = await student_with_lessons(sessions, settings, temporal_client, stripe_client)
        first, second = await renew(http, student, admin), await renew(http, student, admin)
        assert (first.json()["amount_minor"], second.json()["amount_minor"]) == (7000, PRICE)
        # The student's last lesson is the second of month A+1: two of its four lessons will not happen.
        last_lesson = student.calendar.starts[3] + timedelta(minutes=30)
        stopped = StudentStopped(
            enrollment_id=student.enrollment_id,
            parent_id=student.family.parent_id,
            student_id=student.family.student_ids[0],
            reason="moving away",
            last_lesson_ends_at=last_lesson,
        )
        await student.handle.signal(SIGNAL_STUDENT_STOPPED, stopped)
        await student.handle.signal(SIGNAL_STUDENT_STOPPED, stopped)  # a retried stop

        async def both_stops_handled() -> bool:
            view = await student.handle.query("subscriptions")
            return bool(view["subscriptions"][0]["stop_refunds"]) and not await _pending(student)

        await eventually(both_stops_handled, what="the stop's refund")
        after = await renew(http, student, admin)
        assert student.subscription.stripe_subscription_id is not None
        in_stripe = await stripe_client.v1.subscriptions.retrieve_async(student.subscription.stripe_subscription_id)
        # As the enrollment's compensation would: the lessons after the last one are cancelled.
        async with transaction(sessions) as session:
            await session.execute(
                update(Lesson)
                .where(col(Lesson.enrollment_id) == student.enrollment_id, col(Lesson.starts_at) > last_lesson)
                .values(status="cancelled")
            )
        await give_lessons(sessions, settings, temporal_client, student)
        books = await balances(http, admin)
        history = await student.handle.fetch_history()

    await _replays(history, temporal_client.data_converter)
    async with sessions() as session:
        refunds = list(await session.scalars(select(Refund)))
    assert [r.amount_minor for r in refunds] == [7000]
    assert await count(sessions, Refund) == 1
    assert after.status_code == 409, after.text
    assert in_stripe.to_dict().get("cancel_at") == int(last_lesson.timestamp())
    assert books["deferred_revenue"] == 0
    assert books["lesson_revenue"] == -14000
    assert books["refunds"] == 0  # unearned tuition given back: out of deferred revenue, never revenue
    assert await ledger_problems(sessions) == {}


async def _pending(student: Student) -> bool:
    desc = await student.handle.describe()
    return bool(desc.raw_description.pending_activities)


async def test_the_stop_route_closes_an_enrollment_whose_workflow_is_gone(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    async with billing_worker():
        student = await student_with_lessons(sessions, settings, temporal_client, stripe_client)
        parent = await auth_headers(Role.parent, user_id=student.family.user_id)
        url = f"/api/v1/billing/families/{student.family.parent_id}/subscriptions/{student.subscription.id}/stop"
        stop = await http.post(url, json={"reason": "moving away"}, headers=parent)
        assert stop.status_code == 202, stop.text

        async def canceled() -> bool:
            async with sessions() as session:
                sub = await session.get(Subscription, student.subscription.id, populate_existing=True)
            return sub is not None and sub.status == "canceled"

        await eventually(canceled, what="billing stopped")
        again = await http.post(url, json={"reason": "moving away"}, headers=parent)

    body = stop.json()
    assert body["via"] == "billing"
    assert body["stopped"] == ["lessons", "teacher_place", "billing", "enrollment"]
    assert body["lessons_cancelled"] == len(student.calendar.starts)
    assert again.status_code == 409
    async with sessions() as session:
        enrollment = await session.get(Enrollment, student.enrollment_id)
        teacher = await session.get(Teacher, student.family.teacher_id)
        statuses = set(
            await session.scalars(select(col(Lesson.status)).where(col(Lesson.enrollment_id) == student.enrollment_id))
        )
    assert enrollment is not None
    assert (enrollment.state, enrollment.teacher_id) == ("cancelled", None)
    assert teacher is not None
    assert teacher.active_students == 0
    assert statuses == {"cancelled"}


async def test_a_next_semester_continues_the_subscription_and_the_gap_is_not_billed(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    async with billing_worker():
        admin = await auth_headers(Role.admin)
        # The first semester: months A and A+1; Stripe is told to end the subscription after its last lesson.
        student = await student_with_lessons(sessions, settings, temporal_client, stripe_client, booked=6)
        assert student.subscription.stripe_subscription_id is not None
        stripe_sub = student.subscription.stripe_subscription_id
        semester_end = student.calendar.starts[5] + timedelta(minutes=30)

        async def cancel_at() -> int | None:
            found = await stripe_client.v1.subscriptions.retrieve_async(stripe_sub)
            return found.to_dict().get("cancel_at")

        await eventually(cancel_at, until=lambda at: at == int(semester_end.timestamp()), what="cancel_at")
        first = [await renew(http, student, admin) for _ in range(2)]
        # Re-enrollment books the next semester (month A+3) on the same enrollment.
        await book(sessions, student.family, student.enrollment_id, student.calendar.starts[6:])
        next_end = student.calendar.starts[7] + timedelta(minutes=30)
        booked = LessonsBooked(
            enrollment_id=student.enrollment_id,
            parent_id=student.family.parent_id,
            first_lesson_starts_at=student.calendar.starts[6],
            last_lesson_ends_at=next_end,
        )
        await student.handle.signal(SIGNAL_LESSONS_BOOKED, booked)
        await eventually(cancel_at, until=lambda at: at == int(next_end.timestamp()), what="cancel_at moved")
        later = [await renew(http, student, admin) for _ in range(2)]
        # Past the test server's low suggestion, billing may have continued as new by now.
        runs = await _runs(temporal_client, student.handle.id)

    keys = student.calendar.keys
    assert [(a.json()["period_key"], a.json()["amount_minor"]) for a in first] == [(keys[0], 7000), (keys[1], PRICE)]
    # The month between the semesters has no lessons: no invoice; the next semester's month is its last one.
    assert [(a.status_code, a.json()["period_key"], a.json()["amount_minor"]) for a in later[:1]] == [
        (201, keys[3], 7000),
    ]
    assert later[1].status_code == 409
    assert (
        await count(
            sessions, Subscription, col(Subscription.billing_account_id) == student.subscription.billing_account_id
        )
        == 1
    )
    assert await invoices_in_stripe(stripe_client, student) == [7000, 7000, PRICE]
    assert runs
    for history in runs:
        await _replays(history, temporal_client.data_converter)


async def test_histories_recorded_before_lesson_periods_replay() -> None:
    # Recorded with the workflow as it was before lesson periods: a start, a renewal and a stop.
    recorded = (HISTORIES / "billing_before_lesson_periods.json").read_text()
    history = WorkflowHistory.from_json("family-billing-recorded", recorded)
    await _replays(history, data_converter(Settings()))


async def test_a_start_anchors_stripes_cycle_to_the_school_months(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
) -> None:
    async with billing_worker():
        student = await student_with_lessons(sessions, settings, temporal_client, stripe_client)
        view = await student.handle.query("subscriptions")
    assert student.subscription.stripe_subscription_id is not None
    sent = (await stripe_client.v1.subscriptions.retrieve_async(student.subscription.stripe_subscription_id)).to_dict()
    # Free until the first lesson (the 15th of month A), then full periods from the 1st of A+1 at midnight, school time.
    anchor = local_to_utc(student.calendar.months[1], time(0), settings.timezone)
    assert sent["trial_end"] == int(student.calendar.starts[0].timestamp())
    assert sent["billing_cycle_anchor"] == int(anchor.timestamp())
    assert view["subscriptions"][0]["cycle"] is True


def _adjustment_lines(invoice: dict[str, Any]) -> list[dict[str, Any]]:
    return [line for line in invoice["lines"]["data"] if (line.get("metadata") or {}).get("cedar_adjustment")]


async def stripe_clock_draft(stripe_client: stripe.StripeClient, student: Student) -> tuple[str, stripe.Invoice]:
    """Stripe's clock at the trial's end: the draft invoice of month A's stub (localstripe has no clock, so the
    invoice is created here and dated as Stripe dates its lines); invoice.created reaches billing by the webhook."""
    sub_id = student.subscription.stripe_subscription_id
    assert sub_id is not None
    customer = str((await stripe_client.v1.subscriptions.retrieve_async(sub_id)).to_dict()["customer"])
    created = await stripe_client.v1.invoices.create_async(
        params={
            "customer": customer,
            "subscription": sub_id,
            "metadata": {"cedar_period_start": str(int(student.calendar.starts[0].timestamp()))},
        }
    )
    return customer, created


async def adjusted_draft(stripe_client: stripe.StripeClient, invoice_id: str) -> dict[str, Any]:
    async def adjusted() -> dict[str, Any] | None:
        found = (await stripe_client.v1.invoices.retrieve_async(invoice_id)).to_dict()
        return found if _adjustment_lines(found) else None

    return await eventually(adjusted, what="the draft brought to the rule's amount")


def stop_after_first_lesson(student: Student) -> StudentStopped:
    """The student stops after month A's first lesson: one of its two lessons will not happen."""
    return StudentStopped(
        enrollment_id=student.enrollment_id,
        parent_id=student.family.parent_id,
        student_id=student.family.student_ids[0],
        reason="moving away",
        last_lesson_ends_at=student.calendar.starts[0] + timedelta(minutes=30),
    )


async def test_stripes_own_period_invoice_is_adjusted_once_in_draft_and_a_stop_refunds_its_unheld_lessons(
    billing_worker: Callable[..., Any],
    webhooks: str,
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
) -> None:
    secret = settings.stripe_webhook_secrets[0]
    async with billing_worker():
        student = await student_with_lessons(sessions, settings, temporal_client, stripe_client)
        customer, created = await stripe_clock_draft(stripe_client, student)
        draft = await adjusted_draft(stripe_client, created.id)
        # invoice.created delivered again, and another event about the same draft: nothing more is added.
        sent = [
            e
            for e in await customer_events(stripe_client, customer)
            if e["type"] == "invoice.created" and e["data"]["object"]["id"] == created.id
        ]
        assert len(sent) == 1
        again = await post_event(http, sent[0], secret)
        assert again.json()["duplicate"] is True
        updated = stripe_event("invoice.updated", draft)
        assert (await post_event(http, updated, secret)).status_code == 200

        async def handled() -> bool:
            status = await count(
                sessions,
                StripeEvent,
                col(StripeEvent.stripe_event_id) == updated["id"],
                col(StripeEvent.status) == "processed",
            )
            return status == 1

        await eventually(handled, what="the second event acted on")
        # Stripe finalizes and charges the draft after its hour: the payment comes back by the webhook.
        await stripe_client.v1.invoices.pay_async(created.id)

        async def paid() -> uuid.UUID | None:
            async with sessions() as session:
                return await session.scalar(
                    select(col(Payment.id))
                    .join(Invoice, col(Invoice.id) == col(Payment.invoice_id))
                    .where(col(Invoice.stripe_invoice_id) == created.id, col(Payment.status) == "succeeded")
                )

        payment_id = await eventually(paid, what="the period's payment mirrored")
        stopped = stop_after_first_lesson(student)
        await student.handle.signal(SIGNAL_STUDENT_STOPPED, stopped)
        await student.handle.signal(SIGNAL_STUDENT_STOPPED, stopped)

        async def refunded() -> bool:
            view = await student.handle.query("subscriptions")
            return bool(view["subscriptions"][0]["stop_refunds"]) and not await _pending(student)

        await eventually(refunded, what="the stop's refund")
        view = await student.handle.query("subscriptions")
        history = await student.handle.fetch_history()

    await _replays(history, temporal_client.data_converter)
    final = (await stripe_client.v1.invoices.retrieve_async(created.id)).to_dict()
    assert [line["amount"] for line in _adjustment_lines(final)] == [7000 - PRICE]
    assert (final["status"], final["amount_paid"]) == ("paid", 7000)
    key = student.calendar.keys[0]
    assert view["subscriptions"][0]["billed"][key]["stripe_invoice_id"] == created.id
    assert view["subscriptions"][0]["billed"][key]["amount_minor"] == 7000
    async with sessions() as session:
        refunds = list(await session.scalars(select(Refund).where(col(Refund.payment_id) == payment_id)))
    # Month A with one lesson held costs 3500 by the prorated rule: 7000 paid, 3500 back, once.
    assert [r.amount_minor for r in refunds] == [3500]


async def test_histories_recorded_before_stripes_cycle_replay() -> None:
    # Recorded with the workflow as it was before Stripe's cycle followed the lesson periods: a start with lessons,
    # two development renewals of lesson periods, a stop refunding unheld lessons, and the renewal refused after it.
    recorded = (HISTORIES / "billing_lesson_periods_before_stripe_cycle.json").read_text()
    history = WorkflowHistory.from_json("family-billing-recorded", recorded)
    await _replays(history, data_converter(Settings()))


async def test_a_stop_during_the_draft_hour_brings_the_draft_to_the_held_lessons(
    billing_worker: Callable[..., Any],
    webhooks: str,
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
) -> None:
    async with billing_worker():
        student = await student_with_lessons(sessions, settings, temporal_client, stripe_client)
        _, created = await stripe_clock_draft(stripe_client, student)
        await adjusted_draft(stripe_client, created.id)
        # The stop comes before Stripe finalizes the draft: nothing is paid yet, so the draft itself is lowered.
        stopped = stop_after_first_lesson(student)
        await student.handle.signal(SIGNAL_STUDENT_STOPPED, stopped)
        await student.handle.signal(SIGNAL_STUDENT_STOPPED, stopped)

        async def retargeted() -> dict[str, Any] | None:
            found = (await stripe_client.v1.invoices.retrieve_async(created.id)).to_dict()
            return found if found["amount_due"] == 3500 and not await _pending(student) else None

        await eventually(retargeted, what="the draft lowered to the held lesson")
        await stripe_client.v1.invoices.pay_async(created.id)

        async def paid() -> bool:
            async with sessions() as session:
                found = await session.scalar(
                    select(col(Payment.amount_minor))
                    .join(Invoice, col(Invoice.id) == col(Payment.invoice_id))
                    .where(col(Invoice.stripe_invoice_id) == created.id, col(Payment.status) == "succeeded")
                )
            return found == 3500

        await eventually(paid, what="the lowered period paid")
        view = await student.handle.query("subscriptions")
        history = await student.handle.fetch_history()

    await _replays(history, temporal_client.data_converter)
    final = (await stripe_client.v1.invoices.retrieve_async(created.id)).to_dict()
    # Stripe's price brought to the first month's amount, then to the held lesson's: two adjustments.
    assert [line["amount"] for line in _adjustment_lines(final)] == [7000 - PRICE, 3500 - 7000]
    assert view["subscriptions"][0]["billed"][student.calendar.keys[0]]["amount_minor"] == 3500
    assert view["subscriptions"][0]["stop_refunds"] == {}
    assert await count(sessions, Refund) == 0  # nothing paid for the lesson that will not happen


async def test_a_period_invoice_finalized_before_billing_saw_it_is_recorded_at_what_it_billed(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
) -> None:
    async with billing_worker():
        student = await student_with_lessons(sessions, settings, temporal_client, stripe_client)
        # The draft hour passed without billing (no webhook reached us): Stripe finalized and charged the price.
        customer, created = await stripe_clock_draft(stripe_client, student)
        await stripe_client.v1.invoices.pay_async(created.id)
        # The deliveries come late (the catch-up, or Stripe's retries), in order.
        late = [e for e in await customer_events(stripe_client, customer) if e["data"]["object"]["id"] == created.id]
        assert [e["type"] for e in late] == ["invoice.created", "invoice.payment_succeeded"]
        for event in late:
            assert (await post_event(http, event, settings.stripe_webhook_secrets[0])).status_code == 200

        async def recorded() -> dict[str, Any] | None:
            view = await student.handle.query("subscriptions")
            return view["subscriptions"][0]["billed"].get(student.calendar.keys[0])

        billed = await eventually(recorded, what="the period recorded from Stripe's invoice")
        await student.handle.signal(SIGNAL_STUDENT_STOPPED, stop_after_first_lesson(student))

        async def refunded() -> list[int] | None:
            async with sessions() as session:
                amounts = list(await session.scalars(select(col(Refund.amount_minor))))
            return amounts or None

        refunds = await eventually(refunded, what="the stop's refund")
        history = await student.handle.fetch_history()

    await _replays(history, temporal_client.data_converter)
    final = (await stripe_client.v1.invoices.retrieve_async(created.id)).to_dict()
    assert _adjustment_lines(final) == []  # too late to adjust a finalized invoice
    assert (billed["stripe_invoice_id"], billed["amount_minor"]) == (created.id, PRICE)
    # One of month A's lessons held costs 3500: the rest of what Stripe charged comes back.
    assert refunds == [PRICE - 3500]


async def test_histories_recorded_on_stripes_cycle_before_gap_trials_replay() -> None:
    # Recorded with the workflow as it was before gaps raised no invoice: a start on Stripe's cycle, two renewals,
    # the next semester booked, the month between the semesters renewed at zero, and the next semester's month.
    recorded = (HISTORIES / "billing_stripe_cycle_before_gap_trial.json").read_text()
    history = WorkflowHistory.from_json("family-billing-recorded", recorded)
    await _replays(history, data_converter(Settings()))


def _period_starts(invoices: list[stripe.Invoice]) -> list[int | None]:
    """Where each invoice's period starts, as a renewal dates it (None: the subscription's own first invoice)."""
    stamped = [(i.to_dict().get("metadata") or {}).get("cedar_period_start") for i in invoices]
    return sorted((int(s) if s else None for s in stamped), key=lambda s: s or 0)


async def student_ending_a_lesson_soon(
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    ends_at: datetime,
    later: list[datetime],
) -> Student:
    """A monthly piano student whose lesson in progress ends at ``ends_at`` (seconds away), with ``later`` lessons
    booked, started in billing."""
    family = await make_family(sessions)
    method = await card(stripe_client)
    enrollment_id = await make_enrollment(sessions, family, family.student_ids[0], method)
    began = ends_at - timedelta(minutes=1)
    async with transaction(sessions) as session:
        session.add(
            Lesson(
                kind="regular",
                teacher_id=family.teacher_id,
                student_id=family.student_ids[0],
                enrollment_id=enrollment_id,
                starts_at=began,
                ends_at=ends_at,
            )
        )
    await book(sessions, family, enrollment_id, later)
    message = started_message(family, enrollment_id, family.student_ids[0], method, first_regular_lesson_at=began)
    handle = await start_student(temporal_client, settings, message)

    async def subscribed() -> Subscription | None:
        async with sessions() as session:
            return await session.scalar(select(Subscription).where(col(Subscription.enrollment_id) == enrollment_id))

    sub = await eventually(subscribed, what="subscription")
    return Student(family, enrollment_id, sub, handle, Calendar([], [began, *later]))


async def subscription_in_stripe(stripe_client: stripe.StripeClient, student: Student) -> dict[str, Any]:
    assert student.subscription.stripe_subscription_id is not None
    found = await stripe_client.v1.subscriptions.retrieve_async(student.subscription.stripe_subscription_id)
    return found.to_dict()


async def test_a_returning_students_gap_month_raises_no_invoice(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
    http: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
) -> None:
    tz = settings.timezone
    now = datetime.now(UTC)
    this_month = now.astimezone(tz).date().replace(day=1)
    gap_month, next_month = _month(this_month, 1), _month(this_month, 2)
    # The semester's last lesson ends a few seconds from now; the next semester's lessons are in the month after
    # next: the month between them holds none.
    last_ends = now + timedelta(seconds=10)
    resumes = local_to_utc(next_month, time(0), tz)
    spring = [local_to_utc(next_month.replace(day=d), time(16), tz) for d in (5, 12)]
    async with billing_worker():
        admin = await auth_headers(Role.admin)
        student = await student_ending_a_lesson_soon(
            sessions, settings, temporal_client, stripe_client, last_ends, spring
        )
        stripe_sub, handle = student.subscription.stripe_subscription_id, student.handle
        assert stripe_sub is not None

        async def in_stripe() -> dict[str, Any]:
            return await subscription_in_stripe(stripe_client, student)

        before = await in_stripe()
        assert datetime.now(UTC) < last_ends, "the start took longer than the lesson's remaining seconds"
        # While the lesson lasts, billing runs; once it has ended, Stripe is told a trial until the next semester's
        # month begins, without proration.
        paused = await eventually(
            in_stripe, until=lambda found: found.get("trial_end") == int(resumes.timestamp()), what="the gap's trial"
        )
        assert datetime.now(UTC) >= last_ends
        answers = [await renew(http, student, admin) for _ in range(3)]
        invoices = (await stripe_client.v1.invoices.list_async(params={"subscription": stripe_sub, "limit": 100})).data
        history = await handle.fetch_history()

    await _replays(history, temporal_client.data_converter)
    assert before.get("trial_end") != int(resumes.timestamp())
    assert paused["proration_behavior"] == "none"
    assert paused["cancel_at"] == int((spring[-1] + timedelta(minutes=30)).timestamp())
    trial_sent = [
        e
        for e in history.events
        if e.activity_task_scheduled_event_attributes.activity_type.name == "stripe_schedule_subscription"
    ]
    # Told once at the start (cancel_at), once when the lesson had ended (the trial).
    assert len(trial_sent) == 2
    assert trial_sent[1].event_time.ToDatetime(UTC) >= last_ends
    # This month's lesson, then the next semester's month (its last: two lessons prorated); nothing for the gap.
    keys = [this_month.strftime("%Y-%m"), next_month.strftime("%Y-%m")]
    billed = [(a.status_code, a.json().get("period_key"), a.json().get("amount_minor")) for a in answers[:2]]
    assert billed == [(201, keys[0], 3500), (201, keys[1], 7000)]
    assert answers[2].status_code == 409, answers[2].text
    gap_start, gap_end = local_to_utc(gap_month, time(0), tz), resumes
    starts = _period_starts(invoices)
    assert not [s for s in starts if s is not None and gap_start.timestamp() <= s < gap_end.timestamp()]
    # The first lesson had begun when billing started: no trial, so Stripe invoiced at once (its own first invoice,
    # undated); then this month's renewal and the next semester's month.
    assert starts == [None, int(student.calendar.starts[0].timestamp()), int(resumes.timestamp())]


async def test_a_month_closed_after_booking_raises_no_invoice_and_a_stop_cancels_the_pause(
    billing_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    temporal_client: Client,
    stripe_client: stripe.StripeClient,
) -> None:
    tz = settings.timezone
    now = datetime.now(UTC)
    this_month = now.astimezone(tz).date().replace(day=1)
    closed_month, open_month = _month(this_month, 1), _month(this_month, 2)
    later = [local_to_utc(m.replace(day=d), time(16), tz) for m in (closed_month, open_month) for d in (5, 12)]
    ends_at = now + timedelta(seconds=10)
    async with billing_worker():
        # Lessons in three months running: no gap when billing starts.
        closing = await student_ending_a_lesson_soon(sessions, settings, temporal_client, stripe_client, ends_at, later)
        # A second family, the same lessons; this student stops before the lesson ends.
        stopping = await student_ending_a_lesson_soon(
            sessions, settings, temporal_client, stripe_client, ends_at, later
        )
        # The next month is closed for both (its lessons cancelled) while this month's lesson is still going on.
        async with transaction(sessions) as session:
            await session.execute(
                update(Lesson)
                .where(
                    col(Lesson.enrollment_id).in_([closing.enrollment_id, stopping.enrollment_id]),
                    col(Lesson.starts_at).in_(later[:2]),
                )
                .values(status="cancelled")
            )
        stopped = StudentStopped(
            enrollment_id=stopping.enrollment_id,
            parent_id=stopping.family.parent_id,
            student_id=stopping.family.student_ids[0],
            reason="moving away",
            last_lesson_ends_at=ends_at,
        )
        await stopping.handle.signal(SIGNAL_STUDENT_STOPPED, stopped)
        assert datetime.now(UTC) < ends_at, "the starts took longer than the lesson's remaining seconds"
        resumes = int(local_to_utc(open_month, time(0), tz).timestamp())

        async def paused() -> dict[str, Any]:
            return await subscription_in_stripe(stripe_client, closing)

        # Once this month's last lesson has ended, billing reads the lessons again: the closed month is a gap.
        found = await eventually(
            paused, until=lambda sub: sub.get("trial_end") == resumes, what="the closed month's trial"
        )
        # The stopped student's pause was cancelled with the stop: Stripe only ends the subscription after the lesson.
        after_stop = await subscription_in_stripe(stripe_client, stopping)
        stopping_history = await stopping.handle.fetch_history()
        closing_history = await closing.handle.fetch_history()

    assert found["proration_behavior"] == "none"
    assert after_stop.get("trial_end") != resumes
    assert after_stop["cancel_at"] == int(ends_at.timestamp())
    # The server fires a timer when it is due, whatever the worker does: the stop left none to fire.
    assert _timers_fired(closing_history) == 1
    assert _timers_fired(stopping_history) == 0
    for history in (closing_history, stopping_history):
        await _replays(history, temporal_client.data_converter)


def _timers_fired(history: WorkflowHistory) -> int:
    return sum(1 for e in history.events if e.event_type == EventType.EVENT_TYPE_TIMER_FIRED)
