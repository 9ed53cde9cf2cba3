"""Opening re-enrollment and the office's questions refuse what they must: bad input field by field, the wrong
role, another family's re-enrollment."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import select
from sqlmodel import col

from core.contracts.reenrollment import reenrollment_workflow_id
from core.db import SessionFactory
from models import Role, Semester
from tests.school_year.test_reenrollment import AuthHeaders


async def _semesters(sessions: SessionFactory) -> list[Semester]:
    async with sessions() as session:
        return list(await session.scalars(select(Semester).order_by(col(Semester.start_date))))


async def test_opening_refuses_bad_input_field_by_field(
    api: httpx.AsyncClient, demo_data: None, sessions: SessionFactory, auth_headers: AuthHeaders
) -> None:
    admin = await auth_headers(Role.admin)
    fall, spring, summer = await _semesters(sessions)
    url = f"/api/v1/semesters/{fall.id}/reenrollment"
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    cases = [
        ({"deadline": past}, "deadline"),
        ({"deadline": "2030-01-01T10:00:00"}, "deadline"),  # no offset: an instant without a zone
        ({"next_semester_id": str(uuid.uuid4())}, "next_semester_id"),
        ({"next_semester_id": str(fall.id)}, "next_semester_id"),
        ({"default": "maybe"}, "default"),
        ({"surprise": 1}, "surprise"),
    ]
    for body, field in cases:
        refused = await api.post(url, json=body, headers=admin)
        assert refused.status_code == 422, (body, refused.text)
        assert field in refused.json()["fields"], refused.json()
    last = await api.post(f"/api/v1/semesters/{summer.id}/reenrollment", headers=admin)
    assert last.status_code == 422
    assert "add the next one" in last.json()["fields"]["next_semester_id"]
    unknown = await api.post(f"/api/v1/semesters/{uuid.uuid4()}/reenrollment", headers=admin)
    assert unknown.status_code == 404
    nobody = await api.post(url, json={"next_semester_id": str(summer.id)}, headers=admin)
    assert nobody.status_code == 202, nobody.text
    assert (nobody.json()["families"], nobody.json()["next_semester_id"]) == (0, str(summer.id))
    assert spring.start_date > fall.end_date


async def test_only_the_office_opens_and_lists_and_a_family_sees_only_its_own(
    api: httpx.AsyncClient, demo_data: None, sessions: SessionFactory, auth_headers: AuthHeaders
) -> None:
    fall, spring, _ = await _semesters(sessions)
    teacher, parent = await auth_headers(Role.teacher), await auth_headers(Role.parent)
    for headers in (teacher, parent):
        assert (await api.post(f"/api/v1/semesters/{fall.id}/reenrollment", headers=headers)).status_code == 403
        assert (await api.get(f"/api/v1/semesters/{fall.id}/reenrollment", headers=headers)).status_code == 403
    assert (await api.get(f"/api/v1/semesters/{spring.id}/schedule", headers=parent)).status_code == 403
    assert (await api.get(f"/api/v1/semesters/{spring.id}/schedule")).status_code == 401
    someone_else = reenrollment_workflow_id(uuid.uuid4(), fall.id)
    assert (await api.get(f"/api/v1/reenrollments/{someone_else}", headers=parent)).status_code == 404
    answer = {"answers": [{"enrollment_id": str(uuid.uuid4()), "returning": True}]}
    answered = await api.post(f"/api/v1/reenrollments/{someone_else}/answers", json=answer, headers=parent)
    assert answered.status_code == 404
    assert (await api.get("/api/v1/reenrollments/not-a-reenrollment", headers=parent)).status_code == 422
    empty = await api.post(f"/api/v1/reenrollments/{someone_else}/answers", json={"answers": []}, headers=parent)
    assert empty.status_code == 422
    assert "answers" in empty.json()["fields"]
    admin = await auth_headers(Role.admin)
    listed = await api.get(f"/api/v1/semesters/{fall.id}/reenrollment?answer=maybe", headers=admin)
    assert listed.status_code == 422
    assert (await api.get(f"/api/v1/semesters/{uuid.uuid4()}/schedule", headers=admin)).status_code == 404
