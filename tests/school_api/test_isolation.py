"""Object-level isolation: another family's or another teacher's object answers 404 on every resource."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from core.settings import Settings
from tests.school_api.conftest import API, future_local


async def test_two_families_and_two_teachers_see_only_their_own(
    api: httpx.AsyncClient,
    settings: Settings,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
    add_family_records: Callable[..., Any],
) -> None:
    family_a, family_b = await make_family(), await make_family()
    teacher_a, teacher_b = await make_teacher(), await make_teacher()
    lesson_a = await add_lesson(teacher_a.teacher, family_a.students[0], future_local(settings, 7, 16))
    lesson_b = await add_lesson(teacher_b.teacher, family_b.students[0], future_local(settings, 7, 16))
    records_a = await add_family_records(family_a, teacher_a.teacher)
    records_b = await add_family_records(family_b, teacher_b.teacher)

    def family_paths(family: Any, lesson: Any, records: Any) -> list[str]:
        return [
            f"{API}/students/{family.students[0].id}",
            f"{API}/parents/{family.parent.id}",
            f"{API}/parents/{family.parent.id}/consents",
            f"{API}/lessons/{lesson.id}",
            f"{API}/invoices/{records.invoice.id}",
            f"{API}/payments/{records.payment.id}",
            f"{API}/communications/{records.communication.id}",
        ]

    for own, other in ((family_a, family_b), (family_b, family_a)):
        own_lesson, other_lesson = (lesson_a, lesson_b) if own is family_a else (lesson_b, lesson_a)
        own_records, other_records = (records_a, records_b) if own is family_a else (records_b, records_a)
        for path in family_paths(own, own_lesson, own_records):
            assert (await api.get(path, headers=own.headers)).status_code == 200, path
        for path in family_paths(other, other_lesson, other_records):
            answer = await api.get(path, headers=own.headers)
            assert answer.status_code == 404, (path, answer.status_code)
        for listing in ("students", "lessons", "invoices", "payments", "communications"):
            rows = (await api.get(f"{API}/{listing}", headers=own.headers)).json()["data"]
            assert len(rows) == 1, listing

    def teacher_paths(teacher: Any, lesson: Any, family: Any, records: Any) -> list[str]:
        return [
            f"{API}/teachers/{teacher.teacher.id}",
            f"{API}/teachers/{teacher.teacher.id}/availability",
            f"{API}/teachers/{teacher.teacher.id}/time-off",
            f"{API}/lessons/{lesson.id}",
            f"{API}/students/{family.students[0].id}",
            f"{API}/communications/{records.communication.id}",
        ]

    for own, other in ((teacher_a, teacher_b), (teacher_b, teacher_a)):
        mine = (lesson_a, family_a, records_a) if own is teacher_a else (lesson_b, family_b, records_b)
        theirs = (lesson_b, family_b, records_b) if own is teacher_a else (lesson_a, family_a, records_a)
        for path in teacher_paths(own, *mine):
            assert (await api.get(path, headers=own.headers)).status_code == 200, path
        for path in teacher_paths(other, *theirs):
            answer = await api.get(path, headers=own.headers)
            assert answer.status_code == 404, (path, answer.status_code)
        students = (await api.get(f"{API}/students", headers=own.headers)).json()["data"]
        assert [row["id"] for row in students] == [str(mine[1].students[0].id)]


async def test_writes_to_another_familys_or_teachers_objects_are_404(
    api: httpx.AsyncClient,
    settings: Settings,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family_a, family_b = await make_family(), await make_family()
    teacher_a, teacher_b = await make_teacher(), await make_teacher()
    lesson_b = await add_lesson(teacher_b.teacher, family_b.students[0], future_local(settings, 9, 16))
    b_teacher = f"{API}/teachers/{teacher_b.teacher.id}"
    start = future_local(settings, 9, 18).isoformat()
    as_teacher_a = [
        ("PATCH", b_teacher, {"bio": "hijacked"}),
        ("PUT", f"{b_teacher}/availability", {"windows": []}),
        ("POST", f"{b_teacher}/time-off", {"starts_at": start, "ends_at": future_local(settings, 9, 19).isoformat()}),
        ("POST", f"{API}/lessons/{lesson_b.id}/reschedule", {"starts_at": start}),
        ("POST", f"{API}/lessons/{lesson_b.id}/cancel", {}),
        ("PATCH", f"{API}/lessons/{lesson_b.id}", {"notes": "x"}),
        ("POST", f"{API}/lessons", {"student_id": str(family_b.students[0].id), "starts_at": start, "minutes": 30}),
    ]
    as_parent_a = [
        ("PATCH", f"{API}/parents/{family_b.parent.id}", {"phone": "604-555-0000"}),
        ("POST", f"{API}/parents/{family_b.parent.id}/consents", {"kind": "marketing_email", "granted": True}),
        ("PATCH", f"{API}/students/{family_b.students[0].id}", {"first_name": "Eve"}),
        ("POST", f"{API}/lessons/{lesson_b.id}/cancel", {}),
    ]
    for headers, calls in ((teacher_a.headers, as_teacher_a), (family_a.headers, as_parent_a)):
        for method, path, body in calls:
            answer = await api.request(method, path, json=body, headers=headers)
            assert answer.status_code == 404, (method, path, answer.status_code, answer.text)
    untouched = (await api.get(f"{API}/lessons/{lesson_b.id}", headers=family_b.headers)).json()
    assert (untouched["status"], untouched["notes"]) == ("scheduled", "")
