"""From the online form to an active student: teacher, demo, emails, weekly lessons, billing told."""

from __future__ import annotations

import uuid
from datetime import timedelta

import httpx
from sqlalchemy import select
from temporalio.client import Client

from core.db import SessionFactory
from core.settings import Settings
from devstack.smtp_sink import SmtpSink
from models import Closure, Communication, Parent, Role, Semester, User
from tests.enrollment.conftest import EnrollmentWorker
from tests.enrollment.helpers import (
    application,
    billing_events,
    count_rows,
    enroll,
    enrollment_row,
    lessons_of,
    mail_of,
    sent_communications,
    student_of,
    teacher_by_email,
    wait_for_state,
)

MAYA = "maya.lindqvist@cedarheights.example"  # the only piano teacher of the demo school


async def test_an_enrollment_goes_from_the_form_to_active_with_lessons_emails_and_billing(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    settings: Settings,
    smtp_sink: SmtpSink,
    auth_headers,
    temporal_client: Client,
) -> None:
    body = application()
    parent_email = body["parent"]["email"]
    async with enrollment_worker():
        enrollment_id = await enroll(api, body)
        status = await wait_for_state(api, enrollment_id, "demo_scheduled")
        assert status["teacher_display_name"] == "Maya L."
        assert [s["state"] for s in status["steps"]] == [
            "received",
            "validated",
            "account_created",
            "teacher_assigned",
            "demo_scheduled",
        ]
        # Nothing personal on the public status page.
        assert "Robin" not in str(status)
        assert parent_email not in str(status)
        demo_at = status["demo_lesson_at"]
        assert demo_at is not None
        assert status["demo_lesson_local"]

        mail = await mail_of(smtp_sink, enrollment_id, {"welcome-parent", "welcome-teacher"})
        welcome = mail["welcome-parent"][0]
        assert welcome["rcpt_tos"] == [parent_email]
        assert "set-password?token=" in welcome["text"]
        assert "Maya L." in welcome["text"]
        assert "Cedar Heights Music Academy" in welcome["html"]
        assert status["demo_lesson_local"] in welcome["text"]
        assert mail["welcome-teacher"][0]["rcpt_tos"] == [MAYA]
        assert len(mail["welcome-teacher"]) == 1

        maya = await teacher_by_email(sessions, MAYA)
        assert maya.active_students == 1
        other_teacher = await auth_headers(Role.teacher)
        refused = await api.post(
            f"/api/v1/enrollments/{enrollment_id}/demo-outcome", json={"outcome": "continue"}, headers=other_teacher
        )
        assert refused.status_code == 404
        answer = await api.post(
            f"/api/v1/enrollments/{enrollment_id}/demo-outcome",
            json={"outcome": "continue"},
            headers=await auth_headers(Role.teacher, user_id=maya.user_id),
        )
        assert answer.status_code == 200, answer.text
        await wait_for_state(api, enrollment_id, "active")

        row = await enrollment_row(sessions, enrollment_id)
        demo = (await lessons_of(sessions, enrollment_id, "completed"))[0]
        regular = await lessons_of(sessions, enrollment_id, "scheduled")
        assert regular, "weekly lessons were booked"
        tz = settings.timezone
        demo_local = demo.starts_at.astimezone(tz)
        async with sessions() as session:
            semesters = list(await session.scalars(select(Semester)))
            closures = list(await session.scalars(select(Closure)))
        first_day = regular[0].starts_at.astimezone(tz).date()
        term = next(s for s in semesters if s.start_date <= first_day <= s.end_date)
        for lesson in regular:
            local = lesson.starts_at.astimezone(tz)
            assert (local.weekday(), local.time()) == (demo_local.weekday(), demo_local.time())
            assert lesson.ends_at - lesson.starts_at == timedelta(minutes=30)
            assert term.start_date <= local.date() <= term.end_date
            assert not any(c.start_date <= local.date() <= c.end_date for c in closures)
            assert lesson.starts_at > demo.starts_at
        student = await student_of(sessions, enrollment_id)
        assert student is not None
        assert student.is_active
        assert row.parent_id is not None
        events = await billing_events(temporal_client, row.parent_id, 1)
        assert events == [f"started:{enrollment_id}:{regular[0].starts_at.isoformat()}"]

        mail = await mail_of(smtp_sink, enrollment_id, {"welcome-parent", "welcome-teacher", "active"})
        assert {key: len(messages) for key, messages in mail.items()} == {
            "welcome-parent": 1,
            "welcome-teacher": 1,
            "active": 1,
        }
        # The sink has the message a moment before the activity commits the row as sent.
        sent = await sent_communications(sessions, enrollment_id, {"welcome-parent", "welcome-teacher", "active"})
        assert all(c.attempts == 1 for c in sent.values())


async def test_siblings_share_one_family_account_once_the_family_confirms(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
) -> None:
    first = application()
    email = first["parent"]["email"]
    second = application(
        parent={**first["parent"], "first_name": "  Robin "},
        student={"first_name": "Ben", "last_name": "Okafor", "date_of_birth": "2018-06-01"},
        instrument="guitar",
    )
    async with enrollment_worker():
        ids = [await enroll(api, first)]
        await wait_for_state(api, ids[0], "demo_scheduled")
        ids.append(await enroll(api, second))
        await wait_for_state(api, ids[1], "awaiting_confirmation")
        [request] = (await mail_of(smtp_sink, ids[1], {"confirm-family"}))["confirm-family"]
        token = request["text"].split("token=", 1)[1].split()[0]
        answer = {"token": token, "decision": "confirm"}
        confirmed = await api.post(f"/api/v1/enrollments/{ids[1]}/family-confirmation", json=answer)
        assert confirmed.status_code == 200, confirmed.text
        await wait_for_state(api, ids[1], "demo_scheduled")
        welcomes = await smtp_sink.wait_for_messages(email, 3)
        for enrollment_id in ids:
            await sent_communications(sessions, enrollment_id, {"welcome-parent"})
    rows = [await enrollment_row(sessions, i) for i in ids]
    assert rows[0].parent_id == rows[1].parent_id
    assert rows[0].student_id != rows[1].student_id
    assert await count_rows(sessions, User, User.email == email) == 1
    assert await count_rows(sessions, Parent, Parent.email == email) == 1
    assert await count_rows(sessions, Communication, Communication.recipient == email) == 3
    subjects = [m["subject"] for m in welcomes]
    assert sum("Ben" in subject for subject in subjects) == 2  # the confirmation request and the welcome


async def test_the_same_student_cannot_be_enrolled_twice_in_one_instrument(
    api: httpx.AsyncClient, demo_data: None, enrollment_worker: EnrollmentWorker, sessions: SessionFactory
) -> None:
    body = application()
    async with enrollment_worker():
        first = await enroll(api, body)
        await wait_for_state(api, first, "demo_scheduled")
        again = await enroll(api, body)
        failed = await wait_for_state(api, again, "failed")
    assert failed["failure_reason"] == "the student is already enrolled in piano"
    assert (await enrollment_row(sessions, again)).student_id is None
    assert uuid.UUID(first) != uuid.UUID(again)
