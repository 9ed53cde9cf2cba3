"""The admin's side: teachers with logins and weekly availability, the calendar, rates and run-time settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory
from core.settings import Settings
from models import AuditLog, Role, User
from tests.school_api.conftest import API, future_local


async def _audit_actions(sessions: SessionFactory, entity_type: str) -> list[str]:
    async with sessions() as session:
        query = (
            select(col(AuditLog.action))
            .where(col(AuditLog.entity_type) == entity_type)
            .order_by(col(AuditLog.occurred_at))
        )
        return list((await session.scalars(query)).all())


async def test_an_admin_adds_a_teacher_who_can_then_sign_in_and_set_their_week(
    api: httpx.AsyncClient, auth_headers: Callable[..., Any], sessions: SessionFactory
) -> None:
    admin = await auth_headers(Role.admin)
    body = {
        "first_name": "Nina",
        "last_name": "Okafor",
        "display_name": "Nina O.",
        "email": "Nina.Okafor@cedar.example",
        "instruments": ["guitar"],
    }
    assert (await api.post(f"{API}/teachers", json={**body, "instruments": ["oboe"]}, headers=admin)).status_code == 422
    created = await api.post(f"{API}/teachers", json=body, headers=admin)
    assert created.status_code == 201, created.text
    teacher = created.json()
    assert teacher["email"] == "nina.okafor@cedar.example"
    again = await api.post(f"{API}/teachers", json=body, headers=admin)
    assert again.status_code == 409
    async with sessions() as session:
        user = await session.get(User, teacher["user_id"])
    assert user is not None
    assert user.role == Role.teacher

    headers = await auth_headers(Role.teacher, user_id=user.id)
    week = f"{API}/teachers/{teacher['id']}/availability"
    overlapping = {
        "windows": [
            {"weekday": 1, "start_time": "15:00", "end_time": "18:00"},
            {"weekday": 1, "start_time": "17:00", "end_time": "19:00"},
        ]
    }
    assert (await api.put(week, json=overlapping, headers=headers)).status_code == 422
    backwards = {"windows": [{"weekday": 1, "start_time": "18:00", "end_time": "15:00"}]}
    assert (await api.put(week, json=backwards, headers=headers)).status_code == 422
    good = {
        "windows": [
            {"weekday": 1, "start_time": "15:00", "end_time": "18:00"},
            {"weekday": 3, "start_time": "16:00", "end_time": "20:00"},
        ]
    }
    saved = await api.put(week, json=good, headers=headers)
    assert saved.status_code == 200, saved.text
    assert [(w["weekday"], w["start_time"]) for w in (await api.get(week, headers=headers)).json()] == [
        (1, "15:00:00"),
        (3, "16:00:00"),
    ]
    assert await _audit_actions(sessions, "teacher_availability") == ["update"]
    assert await _audit_actions(sessions, "teacher") == ["create"]


async def test_time_off_is_booked_and_cancelled_by_the_teacher(
    api: httpx.AsyncClient,
    settings: Settings,
    make_teacher: Callable[..., Any],
    make_family: Callable[..., Any],
    add_lesson: Callable[..., Any],
    sessions: SessionFactory,
) -> None:
    teacher, family = await make_teacher(), await make_family()
    path = f"{API}/teachers/{teacher.teacher.id}/time-off"
    start = future_local(settings, 3, 9)
    naive = {"starts_at": "2030-01-01T09:00:00", "ends_at": "2030-01-01T12:00:00"}
    assert (await api.post(path, json=naive, headers=teacher.headers)).status_code == 422
    lesson = await add_lesson(teacher.teacher, family.students[0], future_local(settings, 3, 16))
    over_a_lesson = {"starts_at": start.isoformat(), "ends_at": future_local(settings, 3, 20).isoformat()}
    refused = await api.post(path, json=over_a_lesson, headers=teacher.headers)
    assert refused.status_code == 409
    assert refused.json()["fields"]["conflicting_lesson_id"] == str(lesson.id)
    assert (await api.post(f"{API}/lessons/{lesson.id}/cancel", headers=teacher.headers)).status_code == 200
    body = {"starts_at": start.isoformat(), "ends_at": future_local(settings, 4, 9).isoformat(), "reason": "Conference"}
    booked = await api.post(path, json=body, headers=teacher.headers)
    assert booked.status_code == 201
    listed = (await api.get(path, headers=teacher.headers)).json()
    assert listed["total"] == 1
    assert datetime.fromisoformat(listed["data"][0]["starts_at"]) == start
    removed = await api.delete(f"{path}/{booked.json()['id']}", headers=teacher.headers)
    assert removed.status_code == 204
    assert (await api.get(path, headers=teacher.headers)).json()["total"] == 0
    assert await _audit_actions(sessions, "teacher_time_off") == ["create", "delete"]


async def test_the_calendar_keeps_terms_and_closures_inside_their_year(
    api: httpx.AsyncClient, auth_headers: Callable[..., Any], sessions: SessionFactory
) -> None:
    admin = await auth_headers(Role.admin)
    year = await api.post(
        f"{API}/academic-years",
        json={"name": "2030-2031", "start_date": "2030-09-01", "end_date": "2031-08-31"},
        headers=admin,
    )
    assert year.status_code == 201, year.text
    year_id = year.json()["id"]
    duplicate = await api.post(
        f"{API}/academic-years",
        json={"name": "2030-2031", "start_date": "2030-09-01", "end_date": "2031-08-31"},
        headers=admin,
    )
    assert duplicate.status_code == 409
    outside = {"name": "Fall", "start_date": "2030-08-01", "end_date": "2031-01-31"}
    refused = await api.post(f"{API}/academic-years/{year_id}/semesters", json=outside, headers=admin)
    assert refused.status_code == 422
    assert "start_date" in refused.json()["fields"]
    fall = await api.post(
        f"{API}/academic-years/{year_id}/semesters",
        json={**outside, "start_date": "2030-09-08"},
        headers=admin,
    )
    assert fall.status_code == 201
    holiday = await api.post(
        f"{API}/academic-years/{year_id}/closures",
        json={"start_date": "2030-11-11", "end_date": "2030-11-11", "reason": "Remembrance Day"},
        headers=admin,
    )
    assert holiday.status_code == 201, holiday.text
    inverted = await api.patch(f"{API}/closures/{holiday.json()['id']}", json={"end_date": "2030-11-10"}, headers=admin)
    assert inverted.status_code == 422
    detail = (await api.get(f"{API}/academic-years/{year_id}")).json()
    assert [s["name"] for s in detail["semesters"]] == ["Fall"]
    assert [c["start_date"] for c in detail["closures"]] == [date(2030, 11, 11).isoformat()]
    november = await api.get(f"{API}/closures", params={"on_or_after": "2030-11-01", "on_or_before": "2030-11-30"})
    assert [c["reason"] for c in november.json()["data"]] == ["Remembrance Day"]
    assert (await api.delete(f"{API}/academic-years/{year_id}", headers=admin)).status_code == 204
    assert (await api.get(f"{API}/academic-years/{year_id}")).status_code == 404
    assert await _audit_actions(sessions, "closure") == ["create"]
    assert await _audit_actions(sessions, "academic_year") == ["create", "delete"]


async def test_rates_and_settings_are_changed_by_admins_with_an_audit_trail(
    api: httpx.AsyncClient, auth_headers: Callable[..., Any], sessions: SessionFactory
) -> None:
    admin = await auth_headers(Role.admin)
    (rate,) = (await api.get(f"{API}/rates", params={"instrument": "piano", "minutes": 30})).json()["data"]
    raised = await api.patch(f"{API}/rates/{rate['id']}", json={"weekly_price_minor": 3900}, headers=admin)
    assert raised.status_code == 200
    assert raised.json()["weekly_price_minor"] == 3900
    assert (
        await api.patch(f"{API}/rates/{rate['id']}", json={"weekly_price_minor": None}, headers=admin)
    ).status_code == 422
    async with sessions() as session:
        row = await session.scalar(select(AuditLog).where(col(AuditLog.entity_type) == "lesson_rate"))
    assert row is not None
    assert row.before
    assert row.after
    assert (row.before["weekly_price_minor"], row.after["weekly_price_minor"]) == (rate["weekly_price_minor"], 3900)

    key = f"{API}/system-settings/welcome_message"
    put = await api.put(key, json={"value": {"text": "Hello"}, "description": "Shown on the portal"}, headers=admin)
    assert put.status_code == 200
    assert put.json()["value"] == {"text": "Hello"}
    assert (await api.put(key, json={"value": "Hi", "colour": "red"}, headers=admin)).status_code == 422
    assert (await api.put(key, json={"value": "Hi"}, headers=admin)).json()["value"] == "Hi"
    assert (await api.get(key, headers=admin)).json()["value"] == "Hi"
    assert (await api.delete(key, headers=admin)).status_code == 204
    assert (await api.get(key, headers=admin)).status_code == 404
    assert await _audit_actions(sessions, "system_setting") == ["create", "update", "delete"]
    log = await api.get(
        f"{API}/audit-log", params={"entity_type": "system_setting", "sort": "occurred_at"}, headers=admin
    )
    assert [entry["action"] for entry in log.json()["data"]] == ["create", "update", "delete"]


async def test_a_family_created_by_the_office_and_its_consents(
    api: httpx.AsyncClient,
    auth_headers: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
    settings: Settings,
) -> None:
    admin = await auth_headers(Role.admin)
    body = {"first_name": "Ana", "last_name": "Silva", "email": "ana.silva@cedar.example", "phone": "+1 604 555 0199"}
    parent = await api.post(f"{API}/parents", json=body, headers=admin)
    assert parent.status_code == 201, parent.text
    assert parent.json()["user_id"] is not None
    assert (await api.post(f"{API}/parents", json=body, headers=admin)).status_code == 409
    bad_phone = await api.post(
        f"{API}/parents", json={**body, "email": "x@cedar.example", "phone": "call me"}, headers=admin
    )
    assert bad_phone.status_code == 422
    assert "phone" in bad_phone.json()["fields"]

    family = await make_family()
    consents = f"{API}/parents/{family.parent.id}/consents"
    granted = await api.post(consents, json={"kind": "marketing_email", "granted": True}, headers=family.headers)
    assert granted.status_code == 200
    assert [(c["kind"], c["withdrawn_at"]) for c in granted.json()] == [("marketing_email", None)]
    withdrawn = await api.post(consents, json={"kind": "marketing_email", "granted": False}, headers=family.headers)
    assert withdrawn.json()[0]["withdrawn_at"] is not None

    teacher = await make_teacher()
    await add_lesson(teacher.teacher, family.students[0], future_local(settings, 3, 16))
    in_use = await api.delete(f"{API}/students/{family.students[0].id}", headers=admin)
    assert in_use.status_code == 409
    assert (await api.delete(f"{API}/parents/{parent.json()['id']}", headers=admin)).status_code == 204
