"""One family with two children through a whole school year on the real stack, billing included: a closure added
mid-fall, a substitute for one lesson, a transfer to another teacher, re-enrollment with one child returning and
one not, the returning child's spring, and the end of the year with the next year opened for re-enrollment.

Each semester "happens" by moving its lessons (and the semester's dates) back by whole weeks in the database, so
nobody waits for months; billing then bills the periods the lessons fell in, through the development renewals.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
import stripe
from sqlalchemy import delete, func, select, update
from sqlmodel import col
from temporalio.client import Client

from core.contracts.reenrollment import ReenrollmentStatus, reenrollment_workflow_id
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.stripe import create_stripe_client
from devstack.smtp_sink import SmtpSink
from domain.billing_rules import discounted_amount
from domain.tuition import lesson_periods, period_amounts
from models import (
    AcademicYear,
    Communication,
    Enrollment,
    Invoice,
    Lesson,
    LessonKind,
    MakeupCredit,
    Parent,
    Role,
    Semester,
    Subscription,
    Teacher,
    User,
)
from scripts.seed_demo import availability_rows, teacher_row
from tests.billing.conftest import ledger_problems
from tests.enrollment.helpers import application, enroll, enrollment_row, lessons_of, teacher_by_email, wait_for_state
from tests.waiting import eventually

MAYA = "maya.lindqvist@cedarheights.example"  # the demo school's piano teacher
PRICE = 14000  # piano, 30 minutes, monthly (scripts/reference_data.py)
YEAR = timedelta(weeks=52)  # whole weeks keep each lesson's weekday and, a year back, its side of daylight saving
AuthHeaders = Callable[..., Any]


async def _activate(api: httpx.AsyncClient, enrollment_id: str, admin: dict[str, str]) -> None:
    await wait_for_state(api, enrollment_id, "demo_scheduled", "awaiting_outcome", timeout=60)
    answer = await api.post(
        f"/api/v1/enrollments/{enrollment_id}/demo-outcome", json={"outcome": "continue"}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    await wait_for_state(api, enrollment_id, "active", timeout=60)


async def _second_piano_teacher(sessions: SessionFactory) -> Teacher:
    """Theo teaches piano every day from 8:00 to 21:00: a substitute and a transfer always find room with him."""
    from datetime import time

    async with transaction(sessions) as session:
        user = User(email="theo.marsh@cedarheights.example", role=Role.teacher)
        session.add(user)
        await session.flush()
        teacher = teacher_row(user.id, "Theo", "Marsh", user.email, ("piano",), 20)
        session.add(teacher)
        await session.flush()
        session.add_all(availability_rows(teacher.id, [(day, time(8), time(21)) for day in range(7)]))
    return teacher


async def _this_years_calendar(sessions: SessionFactory, settings: Settings) -> tuple[Semester, Semester]:
    """The year in place of the demo's, whatever today's date: a fall running now with ten weeks to go, and a
    spring six weeks after it, so the test never depends on where today falls in the real calendar."""
    today = datetime.now(settings.timezone).date()
    async with transaction(sessions) as session:
        await session.execute(delete(AcademicYear))
        year = AcademicYear(
            name="this year", start_date=today - timedelta(days=60), end_date=today + timedelta(days=330)
        )
        session.add(year)
        await session.flush()
        fall = Semester(
            academic_year_id=year.id,
            name="Fall",
            start_date=today - timedelta(days=30),
            end_date=today + timedelta(weeks=10),
        )
        spring = Semester(
            academic_year_id=year.id,
            name="Spring",
            start_date=today + timedelta(weeks=16),
            end_date=today + timedelta(weeks=30),
        )
        session.add_all([fall, spring])
    return fall, spring


def _day(lesson: Lesson, settings: Settings) -> date:
    return lesson.starts_at.astimezone(settings.timezone).date()


async def _subscriptions(sessions: SessionFactory, enrollment_ids: list[str]) -> dict[str, Subscription]:
    async def made() -> dict[str, Subscription]:
        async with sessions() as session:
            rows = await session.scalars(
                select(Subscription).where(col(Subscription.enrollment_id).in_([uuid.UUID(i) for i in enrollment_ids]))
            )
            return {str(row.enrollment_id): row for row in rows}

    return await eventually(made, until=lambda subs: len(subs) == len(enrollment_ids), what="both subscriptions")


async def _semester_happened(
    sessions: SessionFactory, settings: Settings, semester: Semester, enrollment_ids: list[str], back: timedelta
) -> Semester:
    """The semester's regular lessons of these enrollments, and the semester's dates, move ``back``; the lessons
    still scheduled are given (completed), the cancelled ones stay cancelled."""
    ids = [uuid.UUID(i) for i in enrollment_ids]
    async with transaction(sessions) as session:
        row = await session.get(Semester, semester.id)
        assert row is not None
        start = datetime.combine(row.start_date, datetime.min.time(), tzinfo=settings.timezone)
        end = datetime.combine(row.end_date + timedelta(days=1), datetime.min.time(), tzinfo=settings.timezone)
        within = (
            col(Lesson.enrollment_id).in_(ids),
            col(Lesson.kind) == LessonKind.regular,
            col(Lesson.starts_at) >= start,
            col(Lesson.starts_at) < end,
        )
        await session.execute(
            update(Lesson)
            .where(*within, col(Lesson.status) == "scheduled")
            .values(status="completed", attendance="present")
        )
        moved = {"starts_at": col(Lesson.starts_at) - back, "ends_at": col(Lesson.ends_at) - back}
        await session.execute(update(Lesson).where(*within).values(**moved))
        row.start_date, row.end_date = row.start_date - back, row.end_date - back
    return row


async def _bill_periods(
    api: httpx.AsyncClient, sessions: SessionFactory, settings: Settings, sub: Subscription, admin: dict[str, str]
) -> list[int]:
    """Renews the subscription once per period holding its held lessons not billed yet; the amounts billed."""
    billed = []
    for _ in range(_held_periods(await _held(sessions, sub), settings) - await _invoices(sessions, sub)):
        renewal = await api.post(f"/api/v1/billing/subscriptions/{sub.id}/renewals", headers=admin)
        assert renewal.status_code == 201, renewal.text
        assert renewal.json()["status"] == "paid", renewal.text
        billed.append(int(renewal.json()["amount_minor"]))
    return billed


async def _held(sessions: SessionFactory, sub: Subscription) -> list[datetime]:
    async with sessions() as session:
        rows = await session.scalars(
            select(col(Lesson.starts_at)).where(
                col(Lesson.enrollment_id) == sub.enrollment_id,
                col(Lesson.kind) == LessonKind.regular,
                col(Lesson.status) == "completed",
            )
        )
        return sorted(rows)


def _held_periods(starts: list[datetime], settings: Settings) -> int:
    return len(lesson_periods(starts, "month", settings.timezone))


async def _invoices(sessions: SessionFactory, sub: Subscription) -> int:
    async with sessions() as session:
        return int(
            await session.scalar(
                select(func.count())
                .select_from(Invoice)
                .where(col(Invoice.subscription_id) == sub.id, col(Invoice.amount_due_minor) > 0)
            )
            or 0
        )


async def _reenroll(
    api: httpx.AsyncClient,
    temporal_client: Client,
    parent: Parent,
    ending: Semester,
    following: Semester,
    answers: dict[str, bool],
    headers: dict[str, str],
    admin: dict[str, str],
) -> ReenrollmentStatus:
    deadline = datetime.now(UTC) + timedelta(seconds=8)
    opened = await api.post(
        f"/api/v1/semesters/{ending.id}/reenrollment",
        json={"deadline": deadline.isoformat(), "default": "end", "next_semester_id": str(following.id)},
        headers=admin,
    )
    assert opened.status_code == 202, opened.text
    reenrollment_id = reenrollment_workflow_id(parent.id, ending.id)

    async def offers() -> list[dict[str, Any]]:
        found = await api.get(f"/api/v1/reenrollments/{reenrollment_id}", headers=headers)
        return found.json()["offers"] if found.status_code == 200 else []

    await eventually(offers, until=lambda found: len(found) == len(answers), what="the offers")
    body = {"answers": [{"enrollment_id": e, "returning": r} for e, r in answers.items()]}

    async def answer() -> httpx.Response:
        return await api.post(f"/api/v1/reenrollments/{reenrollment_id}/answers", json=body, headers=headers)

    # A 409 "the offers are being prepared" asks to try again in a moment, as the family's page would.
    await eventually(answer, until=lambda answered: answered.status_code == 200, what="the answers taken")
    handle = temporal_client.get_workflow_handle(reenrollment_id, result_type=ReenrollmentStatus)
    return await handle.result(rpc_timeout=timedelta(seconds=90))


@pytest.mark.school_year_settings(tuition_rule="prorated")
async def test_a_family_of_two_children_through_a_whole_school_year(
    api: httpx.AsyncClient,
    demo_data: None,
    run_worker: Callable[..., Any],
    sessions: SessionFactory,
    settings: Settings,
    smtp_sink: SmtpSink,
    auth_headers: AuthHeaders,
    temporal_client: Client,
) -> None:
    admin = await auth_headers(Role.admin)
    stripe_client: stripe.StripeClient = create_stripe_client(settings)
    fall, spring = await _this_years_calendar(sessions, settings)
    async with run_worker():
        # --- fall: two children start piano with Maya, billing starts for each ------------------------------
        body = application()
        ada = await enroll(api, body)
        await _activate(api, ada, admin)
        parent_id = (await enrollment_row(sessions, ada)).parent_id
        async with sessions() as session:
            parent = await session.get(Parent, parent_id)
        assert parent is not None
        assert parent.user_id is not None
        family = await auth_headers(Role.parent, user_id=parent.user_id)
        sibling = application(
            parent=body["parent"], student={"first_name": "Ben", "last_name": "Okafor", "date_of_birth": "2016-06-01"}
        )
        posted = await api.post("/api/v1/enrollments", json=sibling, headers=family)
        assert posted.status_code == 202, posted.text
        ben = str(posted.json()["enrollment_id"])
        await _activate(api, ben, admin)
        maya = await teacher_by_email(sessions, MAYA)
        assert maya.active_students == 2
        theo = await _second_piano_teacher(sessions)  # after the enrollments: both children start with Maya
        subs = await _subscriptions(sessions, [ada, ben])

        # --- a snow day closes the school on Ada's next lesson: cancelled, credited, everyone told once --------
        ada_ahead = await lessons_of(sessions, ada, "scheduled")
        ben_ahead = await lessons_of(sessions, ben, "scheduled")
        assert len(ada_ahead) >= 3, "the fall semester has weeks left"
        snow_day = ada_ahead[0].starts_at.astimezone(settings.timezone).date()
        closed = await api.post(
            f"/api/v1/academic-years/{fall.academic_year_id}/closures",
            json={"start_date": snow_day.isoformat(), "end_date": snow_day.isoformat(), "reason": "Snow day"},
            headers=admin,
        )
        assert closed.status_code == 201, closed.text
        closure_id = closed.json()["id"]
        lost = {lesson.id for lesson in ada_ahead + ben_ahead if _day(lesson, settings) == snow_day}

        async def credits() -> int:
            async with sessions() as session:
                return int(
                    await session.scalar(
                        select(func.count())
                        .select_from(MakeupCredit)
                        .where(col(MakeupCredit.origin_lesson_id).in_(lost))
                    )
                    or 0
                )

        await eventually(credits, until=lambda n: n == len(lost), what="a make-up credit per closed lesson", timeout=60)
        assert all(lesson.status == "cancelled" for lesson in await lessons_of(sessions, ada) if lesson.id in lost)

        # --- Theo stands in for one of Ben's lessons; Maya keeps her place ----------------------------------
        stand_in = next(lesson for lesson in ben_ahead if lesson.id not in lost)
        substituted = await api.post(
            f"/api/v1/teachers/{maya.id}/substitutions",
            json={"substitute_teacher_id": str(theo.id), "lesson_id": str(stand_in.id)},
            headers=admin,
        )
        assert substituted.status_code == 201, substituted.text
        assert (await teacher_by_email(sessions, MAYA)).active_students == 2

        # --- Ada moves to Theo from her third lesson on ------------------------------------------------------
        moved_from = ada_ahead[2].starts_at.astimezone(settings.timezone).date()
        transferred = await api.post(
            f"/api/v1/enrollments/{ada}/transfer",
            json={"teacher_id": str(theo.id), "from_date": moved_from.isoformat()},
            headers=admin,
        )
        assert transferred.status_code in (200, 201), transferred.text
        assert (await teacher_by_email(sessions, MAYA)).active_students == 1
        assert (await teacher_by_email(sessions, theo.email)).active_students == 1
        ahead_now = await lessons_of(sessions, ada, "scheduled")
        assert {lesson.teacher_id for lesson in ahead_now if _day(lesson, settings) >= moved_from} == {theo.id}

        # --- the fall happens and is billed by the periods its lessons fell in -------------------------------
        fall = await _semester_happened(sessions, settings, fall, [ada, ben], YEAR)
        for enrollment_id in (ada, ben):
            assert await _bill_periods(api, sessions, settings, subs[enrollment_id], admin)

        # --- re-enrollment: Ada returns for spring (with Theo), Ben does not -------------------------------
        result = await _reenroll(api, temporal_client, parent, fall, spring, {ada: True, ben: False}, family, admin)
        assert {str(o.offer.enrollment_id): o.outcome for o in result.offers} == {ada: "booked", ben: "finished"}
        assert {str(o.offer.enrollment_id): o.offer.teacher_id for o in result.offers}[ada] == theo.id
        await eventually(
            lambda: enrollment_row(sessions, ben), until=lambda row: row.state == "completed", what="Ben completed"
        )
        assert (await teacher_by_email(sessions, MAYA)).active_students == 0
        spring_lessons = await lessons_of(sessions, ada, "scheduled")
        assert spring_lessons
        assert all(
            spring.start_date <= lesson.starts_at.astimezone(settings.timezone).date() <= spring.end_date
            for lesson in spring_lessons
        )
        # Nothing is billed for Ben after his last lesson.
        ben_after = await api.post(f"/api/v1/billing/subscriptions/{subs[ben].id}/renewals", headers=admin)
        assert ben_after.status_code in (404, 409), ben_after.text  # its subscription ended with the last lesson

        # --- spring happens on the same subscription; the weeks between the semesters cost nothing ----------
        spring = await _semester_happened(sessions, settings, spring, [ada], YEAR)
        assert await _bill_periods(api, sessions, settings, subs[ada], admin)

        # --- the end of the year: the next year opened for re-enrollment, Ada not returning -----------------
        next_fall_start = spring.end_date + YEAR + timedelta(days=30)
        year = await api.post(
            "/api/v1/academic-years",
            json={
                "name": f"{next_fall_start.year}-{next_fall_start.year + 1}",
                "start_date": next_fall_start.replace(day=1).isoformat(),
                "end_date": date(next_fall_start.year + 1, 8, 31).isoformat(),
            },
            headers=admin,
        )
        assert year.status_code == 201, year.text
        term = await api.post(
            f"/api/v1/academic-years/{year.json()['id']}/semesters",
            json={
                "name": "Fall",
                "start_date": next_fall_start.isoformat(),
                "end_date": (next_fall_start + timedelta(weeks=16)).isoformat(),
            },
            headers=admin,
        )
        assert term.status_code == 201, term.text
        async with sessions() as session:
            next_fall = await session.get(Semester, uuid.UUID(term.json()["id"]))
        assert next_fall is not None
        last = await _reenroll(api, temporal_client, parent, spring, next_fall, {ada: False}, family, admin)
        assert [o.outcome for o in last.offers] == ["finished"]
        await eventually(
            lambda: enrollment_row(sessions, ada), until=lambda row: row.state == "completed", what="Ada completed"
        )
        ada_after = await api.post(f"/api/v1/billing/subscriptions/{subs[ada].id}/renewals", headers=admin)
        assert ada_after.status_code in (404, 409), ada_after.text

        # The Temporal UI lists each family's re-enrollment with its answer.
        listed = [
            w.id
            async for w in temporal_client.list_workflows(
                f"CedarReenrollment = 'closed' AND WorkflowId STARTS_WITH 'reenrollment-{parent.id}'"
            )
        ]
        assert sorted(listed) == sorted(
            [reenrollment_workflow_id(parent.id, fall.id), reenrollment_workflow_id(parent.id, spring.id)]
        )

    # --- at the end: every lesson paid once, nothing after the last, the books balanced, emails once ---------
    for enrollment_id in (ada, ben):
        sub = subs[enrollment_id]
        held = await _held(sessions, sub)
        periods = lesson_periods(held, "month", settings.timezone)
        # The plan's price after the sibling discount (the second child's 10 %).
        price = discounted_amount(PRICE, sub.discount_percent)
        owed = period_amounts("prorated", price, "month", periods)
        assert sub.stripe_subscription_id is not None
        page = await stripe_client.v1.invoices.list_async(
            params={"subscription": sub.stripe_subscription_id, "limit": 100}
        )
        paid = sorted(int(i.amount_paid) for i in page.data if i.status == "paid" and int(i.amount_paid) > 0)
        assert paid == sorted(owed), f"{enrollment_id}: billed {paid}, lessons owe {owed}"
        last_lesson = max(held)
        # Nothing billed after the last lesson: every paid period starts before it (localstripe has no clock, so
        # the development renewal stamps the period it bills).
        starts = [int(str(i.to_dict()["metadata"]["cedar_period_start"])) for i in page.data if int(i.amount_paid) > 0]
        assert starts
        assert all(datetime.fromtimestamp(start, UTC) <= last_lesson for start in starts)
    assert await ledger_problems(sessions) == {}
    async with sessions() as session:
        keys = list(
            await session.scalars(select(col(Communication.dedup_key)).where(col(Communication.status) == "sent"))
        )
        enrollments = list(await session.scalars(select(Enrollment).where(col(Enrollment.parent_id) == parent.id)))
        teachers = {t.email: t.active_students for t in await session.scalars(select(Teacher))}
    assert {e.state for e in enrollments} == {"completed"}
    assert teachers[MAYA] == 0
    assert teachers[theo.email] == 0
    delivered = Counter(m["headers"].get("X-Cedar-Dedup-Key", "").strip() for m in smtp_sink.messages())
    assert not [key for key in keys if delivered[key] != 1], "each email went out once"
    assert f"closure-{closure_id}-parent-{parent.id}" in keys
    assert any(key.startswith(f"reenrollment:{parent.id}:{fall.id}:") for key in keys)
