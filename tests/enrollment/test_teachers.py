"""Teacher assignment: the waitlist (office assignment, freed places, expiry) and the race for a last place."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col

from core.db import SessionFactory, transaction
from devstack.smtp_sink import SmtpSink
from models import Role, Teacher
from tests.enrollment.conftest import EnrollmentWorker
from tests.enrollment.helpers import application, enroll, mail_of, student_of, teacher_by_email, wait_for_state

MAYA = "maya.lindqvist@cedarheights.example"


async def set_capacity(sessions: SessionFactory, email: str, capacity: int) -> None:
    async with transaction(sessions) as session:
        await session.execute(update(Teacher).where(col(Teacher.email) == email).values(capacity=capacity))


async def test_no_teacher_waitlists_then_the_office_assigns_one(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
    auth_headers,
) -> None:
    await set_capacity(sessions, MAYA, 0)
    maya = await teacher_by_email(sessions, MAYA)
    admin = await auth_headers(Role.admin)
    async with enrollment_worker():
        enrollment_id = await enroll(api)
        await wait_for_state(api, enrollment_id, "waitlisted")
        await mail_of(smtp_sink, enrollment_id, {"waitlisted"})
        url = f"/api/v1/enrollments/{enrollment_id}/assign-teacher"
        full = await api.post(url, json={"teacher_id": str(maya.id)}, headers=admin)
        assert full.status_code == 409, full.text
        assert "no free place" in full.json()["detail"], full.text
        guitar_teacher = await teacher_by_email(sessions, "diego.ferreira@cedarheights.example")
        wrong = await api.post(url, json={"teacher_id": str(guitar_teacher.id)}, headers=admin)
        assert wrong.status_code == 409
        assert "does not teach piano" in wrong.json()["detail"]

        await set_capacity(sessions, MAYA, 3)
        assigned = await api.post(url, json={"teacher_id": str(maya.id)}, headers=admin)
        assert assigned.status_code == 200, assigned.text
        status = await wait_for_state(api, enrollment_id, "demo_scheduled")
        again = await api.post(url, json={"teacher_id": str(maya.id)}, headers=admin)
        assert again.status_code == 409
        assert "only in: waitlisted" in again.json()["detail"]
    steps = [s["state"] for s in status["steps"]]
    assert steps[-3:] == ["waitlisted", "teacher_assigned", "demo_scheduled"]
    assert status["teacher_display_name"] == "Maya L."
    assert (await teacher_by_email(sessions, MAYA)).active_students == 1


@pytest.mark.enrollment_settings(waitlist_recheck_interval=timedelta(seconds=1))
async def test_a_freed_place_takes_the_student_off_the_waitlist(
    api: httpx.AsyncClient, demo_data: None, enrollment_worker: EnrollmentWorker, sessions: SessionFactory
) -> None:
    await set_capacity(sessions, MAYA, 0)
    async with enrollment_worker():
        enrollment_id = await enroll(api)
        await wait_for_state(api, enrollment_id, "waitlisted")
        await set_capacity(sessions, MAYA, 1)
        status = await wait_for_state(api, enrollment_id, "demo_scheduled")
    assert status["teacher_display_name"] == "Maya L."


@pytest.mark.enrollment_settings(waitlist_timeout=timedelta(seconds=2))
async def test_the_waitlist_expires_and_says_why(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
) -> None:
    await set_capacity(sessions, MAYA, 0)
    async with enrollment_worker():
        enrollment_id = await enroll(api)
        failed = await wait_for_state(api, enrollment_id, "failed")
        mail = await mail_of(smtp_sink, enrollment_id, {"waitlisted", "closed"})
    assert failed["failure_reason"] == "no teacher became available within 0 day(s) on the waiting list"
    assert "waiting list" in mail["closed"][0]["text"]
    student = await student_of(sessions, enrollment_id)
    assert student is not None
    assert not student.is_active


async def test_two_enrollments_racing_for_the_last_place_never_both_get_it(
    api: httpx.AsyncClient, demo_data: None, enrollment_worker: EnrollmentWorker, sessions: SessionFactory
) -> None:
    await set_capacity(sessions, MAYA, 1)
    async with enrollment_worker():
        ids = await asyncio.gather(enroll(api), enroll(api, application()))
        states = await asyncio.gather(*(wait_for_state(api, i, "demo_scheduled", "waitlisted") for i in ids))
    assert sorted(s["state"] for s in states) == ["demo_scheduled", "waitlisted"]
    assert (await teacher_by_email(sessions, MAYA)).active_students == 1
