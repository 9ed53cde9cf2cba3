"""The owner's school reports on the real stack: retention on a small two-semester school, the attendance
summary, open make-up credits by expiry month; CSVs parse; only an admin may read them; a bad period is a 422."""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import httpx
import pytest

from core.db import SessionFactory, transaction
from core.settings import Settings
from models import AcademicYear, Lesson, MakeupCredit, Role, Semester
from tests.school_api.conftest import API


def _at(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, time(16), tzinfo=settings.timezone)


async def test_retention_attendance_and_credits(
    api: httpx.AsyncClient,
    sessions: SessionFactory,
    settings: Settings,
    auth_headers: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
) -> None:
    admin = await auth_headers(Role.admin)
    family = await make_family(children=3)
    teacher = (await make_teacher()).teacher
    first, second, third = family.students
    fall, winter = (date(2030, 9, 3), date(2030, 12, 20)), (date(2031, 1, 6), date(2031, 4, 11))
    # (student, day, kind, status, attendance): fall has the first two; winter the first and the third (the
    # second only a cancelled lesson and a demo, which make no one active).
    lessons = [
        (first, date(2030, 9, 10), "regular", "completed", "present"),
        (first, date(2030, 12, 20), "regular", "completed", "late"),  # the semester's last day counts
        (second, date(2030, 9, 11), "regular", "no_show", "absent"),
        (first, date(2031, 1, 7), "regular", "scheduled", None),
        (third, date(2031, 1, 8), "makeup", "completed", "present"),
        (second, date(2031, 1, 9), "regular", "cancelled", None),
        (second, date(2031, 1, 10), "demo", "completed", None),
    ]
    async with transaction(sessions) as session:
        year = AcademicYear(
            name=f"2030-{uuid.uuid4().hex[:6]}", start_date=date(2030, 9, 1), end_date=date(2031, 6, 30)
        )
        session.add(year)
        await session.flush()
        session.add_all(
            Semester(academic_year_id=year.id, name=name, start_date=start, end_date=end)
            for name, (start, end) in (("Fall", fall), ("Winter", winter))
        )
        for student, day, kind, status, attendance in lessons:
            at = _at(day, settings)
            session.add(
                Lesson(
                    kind=kind,
                    status=status,
                    attendance=attendance,
                    teacher_id=teacher.id,
                    student_id=student.id,
                    starts_at=at,
                    ends_at=at + timedelta(minutes=30),
                )
            )
        for days, status in ((10, "available"), (12, "available"), (45, "available"), (5, "void")):
            session.add(
                MakeupCredit(
                    parent_id=family.parent.id,
                    student_id=first.id,
                    teacher_id=teacher.id,
                    instrument="piano",
                    lesson_minutes=30,
                    status=status,
                    expires_at=_at(date(2030, 10, 1) + timedelta(days=days), settings),
                )
            )

    period = {"period_start": "2030-08-01", "period_end": "2031-08-01"}
    answer = await api.get(f"{API}/reports/retention", params=period, headers=admin)
    assert answer.status_code == 200, answer.text
    rows = [
        (s["name"], s["active"], s["new"], s["retained_next"], s["retention_rate_percent"])
        for s in answer.json()["semesters"]
    ]
    assert rows == [("Fall", 2, 2, 1, 50), ("Winter", 2, 1, None, None)]
    as_csv = await api.get(f"{API}/reports/retention.csv", params=period, headers=admin)
    parsed = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["name"], r["active"], r["retained_next"]) for r in parsed] == [("Fall", "2", "1"), ("Winter", "2", "")]

    fall_period = {"period_start": "2030-09-01", "period_end": "2031-01-01"}
    summary = (await api.get(f"{API}/reports/attendance", params=fall_period, headers=admin)).json()
    totals = summary["totals"]
    assert (totals["lessons"], totals["present"], totals["late"], totals["absent"], totals["taught"]) == (3, 1, 1, 1, 2)
    assert totals["attendance_rate_percent"] == 67
    assert [row["id"] for row in summary["teachers"]] == [str(teacher.id)]
    attendance_csv = await api.get(f"{API}/reports/attendance.csv", params=fall_period, headers=admin)
    attendance_rows = list(csv.DictReader(io.StringIO(attendance_csv.text)))
    assert [row["name"] for row in attendance_rows] == [teacher.display_name, "total"]

    credits = (await api.get(f"{API}/reports/makeup-credits", headers=admin)).json()
    assert (credits["credits"], credits["minutes"]) == (3, 90)
    assert credits["by_expiry_month"] == [
        {"month": "2030-10", "credits": 2, "minutes": 60},
        {"month": "2030-11", "credits": 1, "minutes": 30},
    ]
    credits_csv = await api.get(f"{API}/reports/makeup-credits.csv", headers=admin)
    assert list(csv.reader(io.StringIO(credits_csv.text)))[-1] == ["total", "3", "90"]

    teacher_headers = await auth_headers(Role.teacher)
    for name in ("revenue", "receivables", "retention", "attendance", "makeup-credits"):
        for suffix in ("", ".csv"):
            for headers in (family.headers, teacher_headers):
                denied = await api.get(f"{API}/reports/{name}{suffix}", params=period, headers=headers)
                assert denied.status_code == 403, (name, suffix, denied.text)


@pytest.mark.parametrize(
    ("name", "params", "field"),
    [
        ("revenue", {"period_start": "2030-02-01", "period_end": "2030-01-01"}, "period_end"),
        ("revenue.csv", {"period_start": "2020-01-01", "period_end": "2030-01-01"}, "period_end"),
        ("retention", {"period_start": "2030-01-01", "period_end": "2030-01-01"}, "period_end"),
        ("attendance", {"period_start": "2030-02-01", "period_end": "2030-01-01"}, "period_end"),
        ("revenue", {"period_start": "not a date", "period_end": "2030-01-01"}, "period_start"),
        ("retention", {"period_end": "2030-01-01"}, "period_start"),
        ("receivables", {"as_of": "yesterday"}, "as_of"),
    ],
)
async def test_a_bad_period_is_a_field_level_422(
    api: httpx.AsyncClient, auth_headers: Callable[..., Any], name: str, params: dict[str, str], field: str
) -> None:
    answer = await api.get(f"{API}/reports/{name}", params=params, headers=await auth_headers(Role.admin))
    assert answer.status_code == 422, answer.text
    assert field in answer.json()["fields"], answer.json()
