"""Billing that follows the lessons: renewals bill the periods holding lessons at the tuition rule's amount (a
prorated first and last month, no invoice for a month without lessons, nothing after the last lesson), a stop
gives back the unheld lessons once, the stop route closes an enrollment whose workflow is gone, and the ledger's
deferred revenue is zero once every lesson is given."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import select, update
from sqlmodel import col
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.worker import Replayer

from activities.billing import BillingActivities
from core.contracts.billing import SIGNAL_LESSONS_BOOKED, SIGNAL_STUDENT_STOPPED, LessonsBooked, StudentStopped
from core.contracts.scheduled import RecognizeLessons
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.temporal import data_converter
from domain.calendar import local_to_utc
from models import Enrollment, Lesson, Refund, Role, Subscription, Teacher
from tests.billing.conftest import (
    Family,
    card,
    count,
    ledger_problems,
    make_enrollment,
    make_family,
    start_student,
    started_message,
)
from tests.waiting import eventually
from workers.main import build_deps
from workflows.billing import FamilyBillingWorkflow

HISTORIES = Path(__file__).parent / "histories"
PRICE = 14000  # piano, 30 minutes, monthly (scripts/reference_data.py)


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
        # A prorated first month (2 of 4 lessons), a full month, the empty month skipped, a prorated last month.
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
    assert [a.json()["status"] for a in answers[:3]] == ["paid", "paid", "paid"]
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

    await Replayer(workflows=[FamilyBillingWorkflow], data_converter=temporal_client.data_converter).replay_workflow(
        history
    )
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
        history = await student.handle.fetch_history()

    keys = student.calendar.keys
    assert [(a.json()["period_key"], a.json()["amount_minor"]) for a in first] == [(keys[0], 7000), (keys[1], PRICE)]
    # The month between the semesters has no lessons and no invoice; the next semester's month is its last one.
    assert (later[0].status_code, later[0].json()["period_key"], later[0].json()["amount_minor"]) == (
        201,
        keys[3],
        7000,
    )
    assert later[1].status_code == 409
    assert (
        await count(
            sessions, Subscription, col(Subscription.billing_account_id) == student.subscription.billing_account_id
        )
        == 1
    )
    assert await invoices_in_stripe(stripe_client, student) == [7000, 7000, PRICE]
    await Replayer(workflows=[FamilyBillingWorkflow], data_converter=temporal_client.data_converter).replay_workflow(
        history
    )


async def test_histories_recorded_before_lesson_periods_replay() -> None:
    # Recorded with the workflow as it was before lesson periods: a start, a renewal and a stop.
    recorded = (HISTORIES / "billing_before_lesson_periods.json").read_text()
    history = WorkflowHistory.from_json("family-billing-recorded", recorded)
    await Replayer(workflows=[FamilyBillingWorkflow], data_converter=data_converter(Settings())).replay_workflow(
        history
    )
