"""The enrollment form's door: per-field 422s that start nothing, idempotent retries, 404s and who may act."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import col

from core.db import SessionFactory, transaction
from models import AuditLog, Enrollment, Instrument, Role, Teacher, User
from tests.enrollment.helpers import application, count_rows, enroll

TODAY = date.today()


def _with(path: str, value: Any) -> dict[str, Any]:
    """A valid application with one field (``a.b``) replaced."""
    body = application()
    target = body
    *parents, leaf = path.split(".")
    for key in parents:
        target = target[key]
    target[leaf] = value
    return body


INVALID = [
    ("student.date_of_birth", f"{TODAY.year - 3}-01-01", "at least 4"),
    ("student.date_of_birth", f"{TODAY.year - 20}-01-01", "at most 18"),
    ("instrument", "tuba", "unknown instrument"),
    ("lesson_minutes", 40, "lessons last 30, 45, 60 minutes"),
    ("parent.email", "not-an-email", "email"),
    ("parent.phone", "call me", "String should match pattern"),
    ("parent.phone", "12", "String should have at least 3 characters"),
    ("parent.phone", "+1 23", "7 to 15 digits"),
    ("preferred_windows", [], "at least one preferred weekly time window"),
    ("preferred_windows", [{"weekday": 1, "start": "17:00", "end": "16:00"}], "end after it starts"),
    ("preferred_windows", [{"weekday": 7, "start": "16:00", "end": "17:00"}], "less than or equal to 6"),
    ("consents.privacy_policy", False, "privacy policy must be accepted"),
    ("parent.first_name", "  ", "at least 1 character"),
    ("payment_method_id", "card_123", "String should match pattern"),
    ("billing_interval", "year", "'week' or 'month'"),
]


@pytest.mark.parametrize(("field", "value", "message"), INVALID, ids=[f"{f}={v!r}" for f, v, _ in INVALID])
async def test_bad_input_is_a_422_naming_the_field_and_starts_nothing(
    api: httpx.AsyncClient, sessions: SessionFactory, field: str, value: Any, message: str
) -> None:
    response = await api.post("/api/v1/enrollments", json=_with(field, value))
    assert response.status_code == 422, response.text
    fields = response.json()["fields"]
    matching = {name: text for name, text in fields.items() if name.startswith(field)}
    assert matching, fields
    assert any(message in text for text in matching.values()), fields
    assert await count_rows(sessions, Enrollment) == 0


async def test_a_missing_consent_block_is_named(api: httpx.AsyncClient) -> None:
    body = application()
    del body["consents"]
    response = await api.post("/api/v1/enrollments", json=body)
    assert response.status_code == 422
    assert "consents" in response.json()["fields"]


async def test_the_same_idempotency_key_gives_the_same_enrollment_and_another_body_a_409(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    body = application()
    first = await enroll(api, body, key="form-submit-1")
    # Key order does not matter: the same application is the same request.
    reordered = dict(reversed(list(body.items())))
    assert await enroll(api, reordered, key="form-submit-1") == first
    changed = {**body, "lesson_minutes": 45}
    conflict = await api.post("/api/v1/enrollments", json=changed, headers={"Idempotency-Key": "form-submit-1"})
    assert conflict.status_code == 409
    assert "Idempotency-Key" in conflict.json()["detail"]
    assert await count_rows(sessions, Enrollment) == 1
    # Without a key, a second submission is a second enrollment.
    await enroll(api, body)
    assert await count_rows(sessions, Enrollment) == 2


async def test_a_new_enrollment_answers_202_with_its_status_url(api: httpx.AsyncClient) -> None:
    response = await api.post("/api/v1/enrollments", json=application())
    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "received"
    assert body["status_url"].endswith(f"/api/v1/enrollments/{body['enrollment_id']}")
    assert response.headers["Location"] == body["status_url"]


async def test_unknown_ids_are_404(api: httpx.AsyncClient, auth_headers) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    admin = await auth_headers(Role.admin)
    assert (await api.get(f"/api/v1/enrollments/{unknown}")).status_code == 404
    for action, payload in (("demo-outcome", {"outcome": "continue"}), ("cancel", {})):
        response = await api.post(f"/api/v1/enrollments/{unknown}/{action}", json=payload, headers=admin)
        assert response.status_code == 404, response.text


async def test_who_may_act_on_an_enrollment(api: httpx.AsyncClient, auth_headers) -> None:
    enrollment_id = await enroll(api)
    outcome = {"outcome": "continue"}
    url = f"/api/v1/enrollments/{enrollment_id}"
    assert (await api.post(f"{url}/demo-outcome", json=outcome)).status_code == 401
    parent = await auth_headers(Role.parent)
    assert (await api.post(f"{url}/demo-outcome", json=outcome, headers=parent)).status_code == 403
    # Another family's enrollment is not theirs to see or cancel: 404.
    assert (await api.post(f"{url}/cancel", json={}, headers=parent)).status_code == 404
    teacher = await auth_headers(Role.teacher)
    assert (await api.post(f"{url}/cancel", json={}, headers=teacher)).status_code == 403
    assert (
        await api.post(f"{url}/assign-teacher", json={"teacher_id": enrollment_id}, headers=teacher)
    ).status_code == 403


async def test_the_form_accepts_exactly_the_instruments_the_school_teaches_now(
    api: httpx.AsyncClient, sessions: SessionFactory
) -> None:
    """One source: an instrument the office adds is offered and accepted; one it retires is neither."""
    async with transaction(sessions) as session:
        session.add(Instrument(code="cello", name="Cello"))
        await session.execute(update(Instrument).where(col(Instrument.code) == "bass").values(is_active=False))
    offered = {i["code"] for i in (await api.get("/api/v1/enrollment-options")).json()["instruments"]}
    assert "cello" in offered
    assert "bass" not in offered
    assert (await api.post("/api/v1/enrollments", json=application(instrument="cello"))).status_code == 202
    retired = await api.post("/api/v1/enrollments", json=application(instrument="bass"))
    assert retired.status_code == 422
    assert "unknown instrument" in retired.json()["fields"]["instrument"]


async def test_staff_list_enrollments_by_state_each_within_their_scope(
    api: httpx.AsyncClient, sessions: SessionFactory, auth_headers: Callable[..., Any]
) -> None:
    ids = [await enroll(api, application(student={**application()["student"], "first_name": n})) for n in "AB"]
    teacher = await auth_headers(Role.teacher)
    async with transaction(sessions) as session:
        mine = Teacher(first_name="Ada", last_name="Keys", display_name="Ada K.", email="ada@cedar.test")
        user = await session.scalar(select(User).where(col(User.role) == Role.teacher))
        assert user is not None
        mine.user_id = user.id
        session.add(mine)
        await session.flush()
        await session.execute(update(Enrollment).where(col(Enrollment.id) == ids[0]).values(teacher_id=mine.id))
    admin = await auth_headers(Role.admin)

    received = (await api.get("/api/v1/enrollments?state=received", headers=admin)).json()
    assert {item["id"] for item in received["data"]} == set(ids)
    assert {item["student_first_name"] for item in received["data"]} == {"A", "B"}
    assert (await api.get("/api/v1/enrollments?state=active&state=waitlisted", headers=admin)).json()["total"] == 0
    assert (await api.get("/api/v1/enrollments?state=nonsense", headers=admin)).status_code == 422
    own = (await api.get("/api/v1/enrollments", headers=teacher)).json()
    assert [item["id"] for item in own["data"]] == [ids[0]]
    assert (await api.get("/api/v1/enrollments", headers=await auth_headers(Role.parent))).status_code == 403
    assert await count_rows(sessions, AuditLog, col(AuditLog.action) == "read") == 3
