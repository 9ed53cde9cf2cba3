"""Lessons: conflicts (the teacher's other lessons, time off, closures), role rules and the parent's cutoff."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory, transaction
from core.settings import Settings
from models import AcademicYear, AuditLog, Closure, Role, TeacherTimeOff
from tests.school_api.conftest import API, future_local


def _booking(student_id: object, starts_at: datetime, minutes: int = 30, **extra: Any) -> dict[str, Any]:
    return {"student_id": str(student_id), "starts_at": starts_at.isoformat(), "minutes": minutes, **extra}


async def test_an_overlapping_booking_is_409_with_the_conflicting_lesson(
    api: httpx.AsyncClient,
    settings: Settings,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family, teacher = await make_family(children=2), await make_teacher()
    first, second = family.students
    start = future_local(settings, 10, 16)
    booked = await add_lesson(teacher.teacher, first, start)
    await add_lesson(teacher.teacher, second, start + timedelta(days=7))  # so the teacher teaches the sibling

    clash = await api.post(
        f"{API}/lessons", json=_booking(second.id, start + timedelta(minutes=15)), headers=teacher.headers
    )
    assert clash.status_code == 409, clash.text
    assert clash.json()["error"] == "lesson_conflict"
    assert clash.json()["fields"]["conflicting_lesson_id"] == str(booked.id)
    assert datetime.fromisoformat(clash.json()["fields"]["conflicting_starts_at"]) == start

    touching = await api.post(
        f"{API}/lessons", json=_booking(second.id, start + timedelta(minutes=30)), headers=teacher.headers
    )
    assert touching.status_code == 201, touching.text
    assert touching.json()["teacher_id"] == str(teacher.teacher.id)


async def test_concurrent_bookings_of_one_slot_give_one_lesson_and_409s(
    api: httpx.AsyncClient,
    settings: Settings,
    make_family: Callable[..., Any],
    auth_headers: Callable[..., Any],
    make_teacher: Callable[..., Any],
) -> None:
    # Many rounds of six-way races: concurrent inserts under an exclusion constraint can deadlock in
    # PostgreSQL unless bookings of one teacher are serialized, so one round alone rarely shows it.
    family, teacher = await make_family(children=6), await make_teacher()
    admin = await auth_headers(Role.admin)
    for day in range(8, 40):
        start = future_local(settings, day, 17)
        answers = await asyncio.gather(
            *(
                api.post(
                    f"{API}/lessons", json=_booking(s.id, start, teacher_id=str(teacher.teacher.id)), headers=admin
                )
                for s in family.students
            )
        )
        assert sorted(a.status_code for a in answers) == [201] + [409] * 5, [a.text for a in answers]
        winner = next(a for a in answers if a.status_code == 201).json()
        for loser in (a.json() for a in answers if a.status_code == 409):
            assert loser["fields"]["conflicting_lesson_id"] == winner["id"]


async def test_time_off_and_closures_refuse_a_booking(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    auth_headers: Callable[..., Any],
) -> None:
    family, teacher = await make_family(), await make_teacher()
    admin = await auth_headers(Role.admin)
    start = future_local(settings, 9, 18)
    off = await api.post(
        f"{API}/teachers/{teacher.teacher.id}/time-off",
        json={
            "starts_at": (start - timedelta(hours=1)).isoformat(),
            "ends_at": (start + timedelta(hours=2)).isoformat(),
        },
        headers=teacher.headers,
    )
    assert off.status_code == 201, off.text
    body = _booking(family.students[0].id, start, teacher_id=str(teacher.teacher.id))
    refused = await api.post(f"{API}/lessons", json=body, headers=admin)
    assert refused.status_code == 409
    assert refused.json()["error"] == "teacher_time_off"
    assert refused.json()["fields"]["time_off_id"] == off.json()["id"]

    closed_day = future_local(settings, 20, 18)
    async with transaction(sessions) as session:
        year = AcademicYear(
            name="test-year",
            start_date=closed_day.date() - timedelta(days=100),
            end_date=closed_day.date() + timedelta(days=100),
        )
        session.add(year)
        await session.flush()
        session.add(
            Closure(
                academic_year_id=year.id,
                start_date=closed_day.astimezone(settings.timezone).date(),
                end_date=closed_day.astimezone(settings.timezone).date(),
                reason="Snow day",
            )
        )
    closed = await api.post(f"{API}/lessons", json={**body, "starts_at": closed_day.isoformat()}, headers=admin)
    assert closed.status_code == 409
    assert closed.json()["error"] == "school_closed"
    async with sessions() as session:
        assert (await session.scalar(select(col(TeacherTimeOff.id)))) is not None


async def test_a_teacher_moves_only_their_lessons_and_only_within_their_week(
    api: httpx.AsyncClient,
    settings: Settings,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
    auth_headers: Callable[..., Any],
) -> None:
    family, ours, theirs = await make_family(), await make_teacher(), await make_teacher()
    start = future_local(settings, 8, 16)
    lesson = await add_lesson(ours.teacher, family.students[0], start)
    other = await add_lesson(theirs.teacher, family.students[0], start + timedelta(days=1))

    assert (await api.get(f"{API}/lessons/{other.id}", headers=ours.headers)).status_code == 404
    moved_other = await api.post(
        f"{API}/lessons/{other.id}/reschedule", json={"starts_at": start.isoformat()}, headers=ours.headers
    )
    assert moved_other.status_code == 404
    listed = await api.get(f"{API}/lessons", headers=ours.headers)
    assert [row["id"] for row in listed.json()["data"]] == [str(lesson.id)]

    yesterday = await api.post(
        f"{API}/lessons/{lesson.id}/reschedule",
        json={"starts_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()},
        headers=ours.headers,
    )
    assert yesterday.status_code == 422
    assert "starts_at" in yesterday.json()["fields"]
    late_night = future_local(settings, 8, 22)
    outside = await api.post(
        f"{API}/lessons/{lesson.id}/reschedule", json={"starts_at": late_night.isoformat()}, headers=ours.headers
    )
    assert outside.status_code == 409
    assert outside.json()["error"] == "outside_availability"
    moved = await api.post(
        f"{API}/lessons/{lesson.id}/reschedule",
        json={"starts_at": (start + timedelta(hours=1)).isoformat()},
        headers=ours.headers,
    )
    assert moved.status_code == 200, moved.text
    assert datetime.fromisoformat(moved.json()["starts_at"]) == start + timedelta(hours=1)
    admin = await auth_headers(Role.admin)
    overridden = await api.post(
        f"{API}/lessons/{lesson.id}/reschedule", json={"starts_at": late_night.isoformat()}, headers=admin
    )
    assert overridden.status_code == 200, overridden.text


async def test_marking_a_lesson_and_the_audit_trail(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family, teacher = await make_family(), await make_teacher()
    past = await add_lesson(teacher.teacher, family.students[0], datetime.now(UTC) - timedelta(hours=2))
    future = await add_lesson(teacher.teacher, family.students[0], future_local(settings, 5, 16))

    early = await api.post(f"{API}/lessons/{future.id}/complete", headers=teacher.headers)
    assert early.status_code == 409
    assert early.json()["error"] == "not_started"
    done = await api.post(f"{API}/lessons/{past.id}/complete", headers=teacher.headers)
    assert done.status_code == 200
    assert done.json()["status"] == "completed"
    again = await api.post(f"{API}/lessons/{past.id}/no-show", headers=teacher.headers)
    assert again.status_code == 409
    assert again.json()["error"] == "invalid_status"
    parent_marks = await api.post(f"{API}/lessons/{past.id}/complete", headers=family.headers)
    assert parent_marks.status_code == 403

    async with sessions() as session:
        (row,) = (await session.scalars(select(AuditLog).where(col(AuditLog.entity_id) == str(past.id)))).all()
    assert (row.action, row.actor_role) == ("completed", "teacher")
    assert row.before is not None
    assert row.after is not None
    assert (row.before["status"], row.after["status"]) == ("scheduled", "completed")


async def test_a_parent_cancels_their_childs_lesson_with_a_credit_before_the_cutoff_and_forfeits_after(
    api: httpx.AsyncClient,
    settings: Settings,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    ours, theirs, teacher = await make_family(), await make_family(), await make_teacher()
    soon = await add_lesson(teacher.teacher, ours.students[0], datetime.now(UTC) + settings.parent_cancel_notice / 2)
    later = await add_lesson(teacher.teacher, ours.students[0], future_local(settings, 6, 16))
    other_family = await add_lesson(teacher.teacher, theirs.students[0], future_local(settings, 6, 18))

    assert (await api.post(f"{API}/lessons/{other_family.id}/cancel", headers=ours.headers)).status_code == 404
    too_late = await api.post(f"{API}/lessons/{soon.id}/cancel", headers=ours.headers)
    assert too_late.status_code == 200, too_late.text
    assert (too_late.json()["outcome"], too_late.json()["credit_id"]) == ("forfeited", None)
    cancelled = await api.post(f"{API}/lessons/{later.id}/cancel", json={"reason": "sick"}, headers=ours.headers)
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["status"] == "cancelled"
    assert cancelled.json()["outcome"] == "credit"
    assert cancelled.json()["credit_id"]
    visible = await api.get(f"{API}/lessons", params={"status": "scheduled"}, headers=ours.headers)
    assert visible.json()["data"] == []


async def test_moving_a_lesson_onto_another_is_409_and_leaves_it_in_place(
    api: httpx.AsyncClient,
    settings: Settings,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family, teacher = await make_family(children=2), await make_teacher()
    start = future_local(settings, 11, 16)
    staying = await add_lesson(teacher.teacher, family.students[0], start)
    moving = await add_lesson(teacher.teacher, family.students[1], start + timedelta(hours=2))
    clash = await api.post(
        f"{API}/lessons/{moving.id}/reschedule",
        json={"starts_at": (start + timedelta(minutes=10)).isoformat(), "minutes": 45},
        headers=teacher.headers,
    )
    assert clash.status_code == 409, clash.text
    assert clash.json()["fields"]["conflicting_lesson_id"] == str(staying.id)
    unchanged = (await api.get(f"{API}/lessons/{moving.id}", headers=teacher.headers)).json()
    assert datetime.fromisoformat(unchanged["starts_at"]) == start + timedelta(hours=2)
