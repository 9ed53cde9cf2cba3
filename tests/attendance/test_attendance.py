"""Attendance on the real stack: who may mark which lesson when, and the totals per student and per teacher."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory
from core.settings import Settings
from models import AuditLog, Communication, Lesson, LessonStatus, MakeupCredit, Role
from tests.school_api.conftest import API, future_local
from tests.school_api.test_makeups import _sent
from tests.waiting import eventually


async def test_a_teacher_marks_their_started_lesson_and_nothing_else(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    auth_headers: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family, teacher, other = await make_family(), await make_teacher(), await make_teacher()
    student = family.students[0]
    past = await add_lesson(teacher.teacher, student, datetime.now(UTC) - timedelta(hours=3))
    future = await add_lesson(teacher.teacher, student, future_local(settings, 5, 16))
    theirs = await add_lesson(other.teacher, student, datetime.now(UTC) - timedelta(days=1, hours=3))

    late = await api.post(f"{API}/lessons/{past.id}/attendance", json={"attendance": "late"}, headers=teacher.headers)
    assert late.status_code == 200, late.text
    assert (late.json()["status"], late.json()["attendance"]) == ("completed", "late")

    early = await api.post(
        f"{API}/lessons/{future.id}/attendance", json={"attendance": "present"}, headers=teacher.headers
    )
    assert early.status_code == 409
    assert early.json()["error"] == "not_started"

    not_mine = await api.post(
        f"{API}/lessons/{theirs.id}/attendance", json={"attendance": "absent"}, headers=teacher.headers
    )
    assert not_mine.status_code == 404

    parent = await api.post(
        f"{API}/lessons/{past.id}/attendance", json={"attendance": "absent"}, headers=family.headers
    )
    assert parent.status_code == 403

    bad = await api.post(f"{API}/lessons/{past.id}/attendance", json={"attendance": "asleep"}, headers=teacher.headers)
    assert bad.status_code == 422
    assert "attendance" in bad.json()["fields"]

    # A correction, by an admin on any teacher's lesson: excused makes it a no-show, but not a forfeited one.
    admin = await auth_headers(Role.admin)
    excused = await api.post(f"{API}/lessons/{theirs.id}/attendance", json={"attendance": "excused"}, headers=admin)
    assert excused.status_code == 200, excused.text
    corrected = await api.post(f"{API}/lessons/{past.id}/attendance", json={"attendance": "absent"}, headers=admin)
    assert (corrected.json()["status"], corrected.json()["attendance"]) == ("no_show", "absent")

    cancelled = await api.post(f"{API}/lessons/{future.id}/cancel", json={"reason": "ill"}, headers=teacher.headers)
    assert cancelled.status_code == 200, cancelled.text
    async with sessions() as session:
        row = await session.get(Lesson, future.id)
        assert row is not None
        row.starts_at, row.ends_at = datetime.now(UTC) - timedelta(hours=1), datetime.now(UTC)
        await session.commit()
    on_cancelled = await api.post(
        f"{API}/lessons/{future.id}/attendance", json={"attendance": "present"}, headers=admin
    )
    assert on_cancelled.status_code == 409
    assert on_cancelled.json()["error"] == "invalid_status"

    async with sessions() as session:
        unchanged = await session.get(Lesson, future.id)
        assert unchanged is not None
        assert (unchanged.status, unchanged.attendance) == (LessonStatus.cancelled, None)
        actions = (
            await session.scalars(
                select(col(AuditLog.action))
                .where(col(AuditLog.entity_id) == str(past.id))
                .order_by(col(AuditLog.occurred_at))
            )
        ).all()
    assert list(actions) == ["attendance", "attendance"]


async def test_attendance_totals_per_student_and_teacher_in_json_and_csv(
    api: httpx.AsyncClient,
    settings: Settings,
    auth_headers: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family, teacher, other = await make_family(children=2), await make_teacher(), await make_teacher()
    ada, ben = family.students
    now = datetime.now(UTC)
    marks = [(ada, "present", 2), (ada, "late", 1), (ada, "absent", 1), (ben, "excused", 1), (ben, "present", 1)]
    at = now - timedelta(days=20)
    for student, attendance, count in marks:
        for _ in range(count):
            lesson = await add_lesson(teacher.teacher, student, at, minutes=45)
            at += timedelta(hours=2)
            done = await api.post(
                f"{API}/lessons/{lesson.id}/attendance", json={"attendance": attendance}, headers=teacher.headers
            )
            assert done.status_code == 200, done.text
    await add_lesson(teacher.teacher, ben, at)  # started, not marked
    await add_lesson(other.teacher, ben, now - timedelta(days=2))  # another teacher's
    today = datetime.now(settings.timezone).date()
    period = {"period_start": str(today - timedelta(days=30)), "period_end": str(today + timedelta(days=1))}

    by_student = await api.get(f"{API}/attendance/students", params=period, headers=teacher.headers)
    assert by_student.status_code == 200, by_student.text
    rows = {row["id"]: row for row in by_student.json()["rows"]}
    assert set(rows) == {str(ada.id), str(ben.id)}
    a, b = rows[str(ada.id)], rows[str(ben.id)]
    assert (a["lessons"], a["present"], a["late"], a["absent"], a["taught"]) == (4, 2, 1, 1, 3)
    assert (a["taught_hours"], a["attendance_rate_percent"], a["name"]) == ("2.25", 75, ada.first_name)
    assert (b["lessons"], b["present"], b["excused"], b["unmarked"]) == (3, 1, 1, 1)  # not the other teacher's

    admin = await auth_headers(Role.admin)
    by_teacher = await api.get(f"{API}/attendance/teachers", params=period, headers=admin)
    teachers = {row["id"]: row for row in by_teacher.json()["rows"]}
    assert teachers[str(teacher.teacher.id)]["lessons"] == 7
    assert teachers[str(teacher.teacher.id)]["taught"] == 4
    assert teachers[str(other.teacher.id)]["unmarked"] == 1

    as_csv = await api.get(f"{API}/attendance/teachers.csv", params=period, headers=admin)
    assert as_csv.status_code == 200
    assert as_csv.headers["content-type"].startswith("text/csv")
    parsed = {row["id"]: row for row in csv.DictReader(io.StringIO(as_csv.text))}
    assert parsed[str(teacher.teacher.id)]["taught"] == "4"
    assert parsed[str(teacher.teacher.id)]["taught_hours"] == "3.00"
    student_csv = await api.get(f"{API}/attendance/students.csv", params=period, headers=teacher.headers)
    assert {row["id"] for row in csv.DictReader(io.StringIO(student_csv.text))} == {str(ada.id), str(ben.id)}

    # A teacher sees only their own: another teacher's totals are not found; a parent has none.
    theirs = await api.get(
        f"{API}/attendance/teachers", params={**period, "teacher_id": str(other.teacher.id)}, headers=teacher.headers
    )
    assert theirs.status_code == 404
    assert (await api.get(f"{API}/attendance/students", params=period, headers=family.headers)).status_code == 403
    backwards = await api.get(
        f"{API}/attendance/students", params={**period, "period_end": period["period_start"]}, headers=admin
    )
    assert backwards.status_code == 422
    assert "period_end" in backwards.json()["fields"]
    missing = await api.get(f"{API}/attendance/students", params={"period_start": "2026-13-01"}, headers=admin)
    assert missing.status_code == 422
    assert set(missing.json()["fields"]) >= {"period_start", "period_end"}


async def _credits_of(sessions: SessionFactory, lesson: Lesson) -> list[MakeupCredit]:
    async with sessions() as session:
        return list(
            (await session.scalars(select(MakeupCredit).where(col(MakeupCredit.origin_lesson_id) == lesson.id))).all()
        )


async def test_an_excused_absence_earns_one_credit_which_marking_otherwise_voids_unless_used(
    api: httpx.AsyncClient,
    sessions: SessionFactory,
    run_worker: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family, teacher = await make_family(), await make_teacher()
    student = family.students[0]
    voided, used, absent = [
        await add_lesson(teacher.teacher, student, datetime.now(UTC) - timedelta(days=days, hours=3))
        for days in (1, 2, 3)
    ]

    async def mark(lesson: Lesson, attendance: str) -> httpx.Response:
        return await api.post(
            f"{API}/lessons/{lesson.id}/attendance", json={"attendance": attendance}, headers=teacher.headers
        )

    async with run_worker():
        for _ in range(2):  # marked excused twice: still one credit, told once
            excused = await mark(voided, "excused")
            assert excused.status_code == 200, excused.text
            assert (excused.json()["status"], excused.json()["attendance"]) == ("no_show", "excused")
        [earned] = await _credits_of(sessions, voided)
        assert (earned.status, earned.reason) == ("available", "excused absence")
        expected = {f"lesson-cancelled-{voided.id}-{to}" for to in ("parent", "teacher")}
        sent = await eventually(
            lambda: _sent(sessions, f"lesson-cancelled-{voided.id}"), until=lambda s: set(s) == expected, what="2"
        )
        assert set(sent.values()) == {1}
        async with sessions() as session:
            told = dict(
                (
                    await session.execute(
                        select(col(Communication.template), col(Communication.subject)).where(
                            col(Communication.dedup_key).in_(expected)
                        )
                    )
                )
                .tuples()
                .all()
            )
        assert set(told) == {"lesson_excused_parent", "lesson_excused_teacher"}  # not "cancelled by the family"
        assert "marked excused: make-up credit earned" in told["lesson_excused_parent"]
        assert "excused absence" in told["lesson_excused_teacher"]

        present = await mark(voided, "present")
        assert present.status_code == 200, present.text
        assert (present.json()["status"], present.json()["attendance"]) == ("completed", "present")
        assert [row.status for row in await _credits_of(sessions, voided)] == ["void"]
        again = await mark(voided, "excused")
        assert again.status_code == 409, again.text
        assert again.json()["error"] == "credit_voided"

        assert (await mark(used, "excused")).status_code == 200
        [credit] = await _credits_of(sessions, used)
        slots = await api.get(f"{API}/makeups/credits/{credit.id}/slots", headers=family.headers)
        assert slots.status_code == 200, slots.text
        booked = await api.post(
            f"{API}/makeups/credits/{credit.id}/book",
            json={"starts_at": slots.json()[0]["starts_at"]},
            headers=family.headers,
        )
        assert booked.status_code == 201, booked.text
        refused = await mark(used, "absent")
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"] == "credit_used"
        assert "already used" in refused.json()["detail"]

        forfeited = await mark(absent, "absent")
        assert (forfeited.json()["status"], forfeited.json()["attendance"]) == ("no_show", "absent")
    assert await _credits_of(sessions, absent) == []
    assert [row.status for row in await _credits_of(sessions, used)] == ["used"]
    async with sessions() as session:
        still = await session.get(Lesson, used.id)
        assert still is not None
        assert (still.status, still.attendance) == (LessonStatus.no_show, "excused")
        voids = (
            await session.scalars(
                select(AuditLog).where(col(AuditLog.action) == "makeup_void", col(AuditLog.entity_id) == str(earned.id))
            )
        ).all()
    assert [row.after["reason"] for row in voids if row.after] == [
        f"the excused lesson of {voided.starts_at.date().isoformat()} was marked present"
    ]
