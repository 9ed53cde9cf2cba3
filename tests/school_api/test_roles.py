"""Role rules per resource: what each role may call (401 without a token, 403 for the wrong role)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from models import Role
from tests.school_api.conftest import API

# (method, path, body) that only an admin may call; the others must be refused before any lookup.
ADMIN_ONLY = [
    ("GET", "/parents", None),
    ("GET", "/teachers", None),
    ("POST", "/students", {}),
    ("POST", "/teachers", {}),
    ("POST", "/rates", {}),
    ("POST", "/instruments", {}),
    ("POST", "/academic-years", {}),
    ("GET", "/system-settings", None),
    ("PUT", "/system-settings/lesson_policy", {"value": 1}),
    ("GET", "/audit-log", None),
]
PUBLIC = ["/instruments", "/rates", "/catalog/teachers", "/enrollment-options", "/academic-years", "/closures"]


async def test_admin_only_routes_refuse_everyone_else(
    api: httpx.AsyncClient,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    auth_headers: Callable[..., Any],
) -> None:
    family, teacher = await make_family(), await make_teacher()
    admin = await auth_headers(Role.admin)
    for method, path, body in ADMIN_ONLY:
        anonymous = await api.request(method, f"{API}{path}", json=body)
        assert anonymous.status_code == 401, (method, path, anonymous.status_code)
        for headers in (family.headers, teacher.headers):
            refused = await api.request(method, f"{API}{path}", json=body, headers=headers)
            assert refused.status_code == 403, (method, path, refused.status_code)
            assert refused.json()["error"] == "forbidden"
        allowed = await api.request(method, f"{API}{path}", json=body, headers=admin)
        assert allowed.status_code in (200, 422), (method, path, allowed.status_code)


async def test_the_catalogue_is_public(api: httpx.AsyncClient, demo_data: None) -> None:
    for path in PUBLIC:
        answer = await api.get(f"{API}{path}")
        assert answer.status_code == 200, path
        assert answer.json()["total"] > 0 if "data" in answer.json() else answer.json()
    profiles = (await api.get(f"{API}/catalog/teachers", params={"instrument": "bass"})).json()["data"]
    assert {p["display_name"] for p in profiles} == {"Diego F.", "Aiko T."}
    assert all(set(p) == {"id", "display_name", "bio", "instruments"} for p in profiles)  # no email, no load
    options = (await api.get(f"{API}/enrollment-options")).json()
    assert [i["code"] for i in options["instruments"]] == ["bass", "guitar", "piano"]
    assert options["lesson_lengths_minutes"] == [30, 45, 60]
    assert options["billing_intervals"] == ["week", "month"]
    assert len(options["rates"]) == 9


async def test_families_and_teachers_keep_to_their_own_roles(
    api: httpx.AsyncClient, make_family: Callable[..., Any], make_teacher: Callable[..., Any]
) -> None:
    family, teacher = await make_family(), await make_teacher()
    child = family.students[0]
    # A teacher reads no family profile and edits no student; a parent books no lessons and reads no teacher record.
    assert (await api.get(f"{API}/parents/{family.parent.id}", headers=teacher.headers)).status_code == 403
    assert (await api.patch(f"{API}/students/{child.id}", json={}, headers=teacher.headers)).status_code == 403
    assert (await api.get(f"{API}/invoices", headers=teacher.headers)).status_code == 403
    booking = {"student_id": str(child.id), "starts_at": "2030-01-07T17:00:00Z", "minutes": 30}
    assert (await api.post(f"{API}/lessons", json=booking, headers=family.headers)).status_code == 403
    assert (await api.get(f"{API}/teachers/{teacher.teacher.id}", headers=family.headers)).status_code == 403

    # A teacher edits their profile's words, not their load or instruments.
    own = f"{API}/teachers/{teacher.teacher.id}"
    bio = await api.patch(own, json={"bio": "Jazz piano."}, headers=teacher.headers)
    assert bio.status_code == 200
    assert bio.json()["bio"] == "Jazz piano."
    capacity = await api.patch(own, json={"capacity": 99}, headers=teacher.headers)
    assert capacity.status_code == 403
    assert set(capacity.json()["fields"]) == {"capacity"}
