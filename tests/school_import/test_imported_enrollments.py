"""An imported student's enrollment has no workflow (it began before Cedar); cancelling it through the enrollment
route still stops its lessons and gives the teacher's place back, as the workflow's compensations would."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlmodel import col

from core.db import SessionFactory, transaction
from core.settings import Settings
from models import AuditLog, Enrollment, Lesson, Role, Student, Teacher
from scripts.import_school import import_school
from tests.school_import.test_import import calendar, sample_school


async def test_cancelling_an_imported_enrollment_stops_its_lessons_and_frees_the_place(
    sessions: SessionFactory, settings: Settings, api: httpx.AsyncClient, auth_headers: Callable[..., Any]
) -> None:
    await calendar(sessions, settings)
    await import_school(settings, sessions, sample_school())
    async with transaction(sessions) as session:
        enrollment = (await session.scalars(select(Enrollment).order_by(col(Enrollment.created_at)))).first()
        assert enrollment is not None
        teacher = await session.get(Teacher, enrollment.teacher_id)
        assert teacher is not None
        load_before = teacher.active_students

    answer = await api.post(
        f"/api/v1/enrollments/{enrollment.id}/cancel",
        json={"reason": "moving away"},
        headers=await auth_headers(Role.admin),
    )

    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "cancelled"
    now = datetime.now(UTC)
    async with transaction(sessions) as session:
        row = await session.get(Enrollment, enrollment.id)
        assert row is not None
        assert row.state == "cancelled"
        teacher = await session.get(Teacher, enrollment.teacher_id)
        assert teacher is not None
        assert teacher.active_students == load_before - 1
        ahead = await session.scalar(
            select(func.count())
            .select_from(Lesson)
            .where(
                col(Lesson.enrollment_id) == enrollment.id,
                col(Lesson.starts_at) > now,
                col(Lesson.status) != "cancelled",
            )
        )
        assert ahead == 0
        student = await session.get(Student, enrollment.student_id)
        assert student is not None
        others = await session.scalar(
            select(func.count())
            .select_from(Enrollment)
            .where(col(Enrollment.student_id) == student.id, col(Enrollment.state) == "active")
        )
        assert student.is_active == bool(others)
        audit = await session.scalar(
            select(AuditLog).where(col(AuditLog.action) == "cancel", col(AuditLog.entity_id) == str(enrollment.id))
        )
        assert audit is not None
        assert audit.after is not None
        assert audit.after["via"] == "enrollment cancel"
