"""``cedar import`` on the real stack: the sample school moves in, a second run changes nothing, a broken set is
refused whole, ``--stripe`` makes each family's customer once, and My Music Staff's export moves in too."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
import stripe
from sqlalchemy import func, select
from sqlmodel import SQLModel, col

from core.db import SessionFactory, transaction
from core.settings import Settings
from core.stripe import create_stripe_client
from domain.school_import import ImportFile
from models import (
    AcademicYear,
    AuditLog,
    BillingAccount,
    Closure,
    Consent,
    Enrollment,
    Lesson,
    Parent,
    Semester,
    Student,
    Teacher,
    TeacherAvailability,
    User,
)
from scripts.import_school import ImportCounts, ImportRefused, ImportRequest, import_school
from tests.conftest import REPO_ROOT

SAMPLE = REPO_ROOT / "docs" / "import"
TABLES: tuple[type[SQLModel], ...] = (
    User,
    Teacher,
    TeacherAvailability,
    Parent,
    Student,
    Consent,
    Enrollment,
    Lesson,
    AuditLog,
    BillingAccount,
)


def sample(folder: str, name: str) -> ImportFile:
    path = SAMPLE / folder / f"{name}.csv"
    return ImportFile(str(path), path.read_text(encoding="utf-8"))


def sample_school(**options: object) -> ImportRequest:
    return ImportRequest(
        sample("sample", "teachers"),
        sample("sample", "families"),
        sample("sample", "lessons"),
        **options,  # type: ignore[arg-type]
    )


async def calendar(sessions: SessionFactory, settings: Settings) -> tuple[date, Closure]:
    """A semester running today for ten more weeks, with a week's closure in it; returns its end and closure."""
    today = datetime.now(settings.timezone).date()
    end = today + timedelta(weeks=10)
    async with transaction(sessions) as session:
        year = AcademicYear(name="this year", start_date=today - timedelta(days=60), end_date=end + timedelta(days=30))
        session.add(year)
        await session.flush()
        session.add(Semester(academic_year_id=year.id, name="Now", start_date=today - timedelta(days=30), end_date=end))
        closure = Closure(
            academic_year_id=year.id,
            start_date=today + timedelta(days=14),
            end_date=today + timedelta(days=20),
            reason="Break",
        )
        session.add(closure)
    return end, closure


async def counts(sessions: SessionFactory) -> dict[str, int]:
    async with transaction(sessions) as session:
        return {
            model.__name__: int(await session.scalar(select(func.count()).select_from(model)) or 0) for model in TABLES
        }


async def test_the_sample_school_moves_in(sessions: SessionFactory, settings: Settings) -> None:
    semester_end, closure = await calendar(sessions, settings)
    made = await import_school(settings, sessions, sample_school())

    assert made.lines()[:4] == [
        "teachers: 3 created, 0 unchanged",
        "families: 4 created, 0 unchanged",
        "students: 5 created, 0 unchanged",
        "weekly lessons: 6 created, 0 unchanged",
    ]
    async with transaction(sessions) as session:
        teachers = {t.email: t for t in await session.scalars(select(Teacher))}
        assert {email: t.active_students for email, t in teachers.items()} == {
            "clara.nguyen@riverside.example": 3,
            "tomas.okafor@riverside.example": 2,
            "ines.berg@riverside.example": 1,
        }
        clara = teachers["clara.nguyen@riverside.example"]
        assert (clara.capacity, clara.hourly_rate_minor, clara.display_name) == (12, 4800, "Clara N.")
        assert await session.scalar(select(func.count()).select_from(TeacherAvailability)) == 6
        # Logins the way the product makes them: no password until the reset link is used.
        users = (await session.execute(select(col(User.email), col(User.role), col(User.password_hash)))).all()
        assert (
            sorted((role, password) for _, role, password in users) == [("parent", None)] * 4 + [("teacher", None)] * 3
        )
        assert all(t.user_id is not None for t in teachers.values())

        enrollments = list(await session.scalars(select(Enrollment)))
        assert len(enrollments) == 6
        assert {e.state for e in enrollments} == {"active"}
        assert all(e.workflow_id == f"enrollment-{e.id}" for e in enrollments)
        students = list(await session.scalars(select(Student)))
        assert len(students) == 5
        assert all(s.is_active for s in students)

        lessons = list(await session.scalars(select(Lesson)))
        assert lessons
        assert {(lesson.kind, lesson.status) for lesson in lessons} == {("regular", "scheduled")}
        now = datetime.now(UTC)
        for enrollment in enrollments:
            booked = sorted(lesson.starts_at for lesson in lessons if lesson.enrollment_id == enrollment.id)
            local = [start.astimezone(settings.timezone) for start in booked]
            window = enrollment.preferred_windows[0]
            # Every week left in the semester at the lesson's local time, none in the closure.
            assert {day.weekday() for day in local} == {window["weekday"]}
            assert {day.time() for day in local} == {time.fromisoformat(window["start"])}
            assert all(start > now for start in booked)
            assert not [d for d in local if closure.start_date <= d.date() <= closure.end_date]
            assert semester_end - local[-1].date() < timedelta(days=7)
            gaps = {(b - a).days for a, b in itertools.pairwise(local)}
            assert gaps <= {7, 14}
        assert made.lessons_booked == len(lessons)

        consents = {
            (email, kind): (granted, at.astimezone(settings.timezone).date(), version, source)
            for email, kind, granted, at, version, source in await session.execute(
                select(
                    col(Parent.email),
                    col(Consent.kind),
                    col(Consent.granted),
                    col(Consent.granted_at),
                    col(Consent.policy_version),
                    col(Consent.source),
                ).join(Parent, col(Parent.id) == col(Consent.parent_id))
            )
        }
        assert len(consents) == 8
        assert consents["hannah.reyes@example.com", "privacy_policy"] == (True, date(2025, 9, 2), "2026-01", "import")
        assert consents["hannah.reyes@example.com", "marketing_email"] == (True, date(2025, 9, 2), "2026-01", "import")
        assert consents["omar.haddad@example.com", "marketing_email"][0] is False
        assert consents["paul.moreau@example.com", "marketing_email"][:2] == (True, date(2024, 2, 1))

        audit = (await session.execute(select(col(AuditLog.actor_role), col(AuditLog.entity_type)))).all()
        assert {role for role, _ in audit} == {"import"}
        kinds = [entity for _, entity in audit]
        assert (kinds.count("teacher"), kinds.count("parent"), kinds.count("student")) == (3, 4, 5)
        assert (kinds.count("consent"), kinds.count("enrollment")) == (8, 6)
        assert await session.scalar(select(func.count()).select_from(BillingAccount)) == 0  # only with --stripe


async def test_a_second_run_changes_nothing(sessions: SessionFactory, settings: Settings) -> None:
    await calendar(sessions, settings)
    first = await import_school(settings, sessions, sample_school())
    before = await counts(sessions)
    again = await import_school(settings, sessions, sample_school())

    assert await counts(sessions) == before
    assert sum(again.created.values()) == 0
    total = sum(first.created.values())
    assert again.lines()[-1] == f"import: 0 created, {total} unchanged"
    async with transaction(sessions) as session:
        loads = set(await session.scalars(select(col(Teacher.active_students))))
    assert loads == {3, 2, 1}


async def test_a_dry_run_counts_and_writes_nothing(sessions: SessionFactory, settings: Settings) -> None:
    await calendar(sessions, settings)
    before = await counts(sessions)
    made = await import_school(settings, sessions, sample_school(dry_run=True))
    assert made.created["weekly lessons"] == 6
    assert await counts(sessions) == before


def cli(settings: Settings, *args: str, **more: str) -> subprocess.CompletedProcess[str]:
    """``python -m scripts.import_school`` with this test's database (and ``more`` CEDAR_ settings)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CEDAR_") and k != "DATABASE_URL"}
    env = {**clean, "CEDAR_DATABASE_URL": str(settings.database_url), "CEDAR_ENVIRONMENT": "test", **more}
    return subprocess.run(
        [sys.executable, "-m", "scripts.import_school", *args],
        cwd=REPO_ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_a_broken_set_is_refused_whole_with_every_problem(
    sessions: SessionFactory, settings: Settings, tmp_path: Path
) -> None:
    await calendar(sessions, settings)
    teachers = (SAMPLE / "sample" / "teachers.csv").read_text(encoding="utf-8").splitlines()
    teachers[3] = teachers[3].replace("Fri 15:00-18:00", "Fri 15:00-18:00; Fri 17:30-19:00")  # line 4
    families = (SAMPLE / "sample" / "families.csv").read_text(encoding="utf-8").splitlines()
    families[3] = families[3].replace("2012-02-29,2024-09-10", "2012-02-29,")  # line 4: no consent date
    families[4] = families[4].replace("2016-07-04", "2024-07-04")  # line 5: two years old
    lessons = (SAMPLE / "sample" / "lessons.csv").read_text(encoding="utf-8").splitlines()
    lessons[2] = lessons[2].replace("Mon,16:00", "Mon,15:45")  # line 3: overlaps Lucas at 15:30
    lessons[3] = lessons[3].replace("tomas.okafor", "tom.okafor")  # line 4: no such teacher
    lessons[6] = lessons[6].replace("16:30", "21:00")  # line 7: after Tomás's Thursday
    for name, rows in (("teachers", teachers), ("families", families), ("lessons", lessons)):
        (tmp_path / f"{name}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    before = await counts(sessions)

    ran = cli(
        settings,
        *("--teachers", str(tmp_path / "teachers.csv")),
        *("--families", str(tmp_path / "families.csv")),
        *("--lessons", str(tmp_path / "lessons.csv")),
    )

    assert ran.returncode == 1, ran.stdout + ran.stderr
    t, f, lsn = (str(tmp_path / f"{n}.csv") for n in ("teachers", "families", "lessons"))
    # Only the report: a library's warning on stderr is not the import's to check.
    report = [line for line in ran.stderr.splitlines() if line.startswith((str(tmp_path), "import:"))]
    assert report == [
        f"{t}:4:5: availability: 'Fri 17:30-19:00' overlaps 'Fri 15:00-18:00'",
        f"{f}:4:8: privacy_policy_accepted_on: missing consent: the date the family accepted the privacy policy",
        f"{f}:5:7: date_of_birth: students must be at least 4 years old; this student is 2",
        f"{lsn}:3:6: start_time: overlaps clara.nguyen@riverside.example's lesson on line 2",
        f"{lsn}:4:3: teacher_email: unknown teacher tom.okafor@riverside.example (not in the teachers file)",
        f"{lsn}:7:6: start_time: Thu 21:00-21:30 is outside tomas.okafor@riverside.example's availability",
        "import: 6 problem(s); nothing was written",
    ]
    assert ran.stdout == ""
    assert await counts(sessions) == before


async def test_the_command_line_imports_and_reports_counts(sessions: SessionFactory, settings: Settings) -> None:
    await calendar(sessions, settings)
    files = [f"--{name}={SAMPLE / 'sample' / f'{name}.csv'}" for name in ("teachers", "families", "lessons")]
    first = cli(settings, *files)
    assert first.returncode == 0, first.stderr
    assert "weekly lessons: 6 created, 0 unchanged" in first.stdout
    again = cli(settings, *files)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines()[-1] == "import: 0 created, 18 unchanged"


async def _customers(client: stripe.StripeClient, email: str, parent_id: object) -> list[str]:
    """The parent's customers in Stripe: other tests of the session share localstripe and the sample's emails."""
    found = await client.v1.customers.list_async(params={"email": email, "limit": 100})
    return [c.id for c in found.data if c.to_dict().get("metadata", {}).get("cedar_parent_id") == str(parent_id)]


async def test_stripe_customers_are_made_once_and_only_when_asked(sessions: SessionFactory, settings: Settings) -> None:
    await calendar(sessions, settings)
    await import_school(settings, sessions, sample_school())
    async with transaction(sessions) as session:
        assert await session.scalar(select(func.count()).select_from(BillingAccount)) == 0

    made: ImportCounts = await import_school(settings, sessions, sample_school(stripe=True))
    again = await import_school(settings, sessions, sample_school(stripe=True))

    assert (made.created["stripe customers"], again.unchanged["stripe customers"]) == (4, 4)
    assert again.created["stripe customers"] == 0
    client = create_stripe_client(settings)
    async with transaction(sessions) as session:
        query = select(col(Parent.email), col(Parent.id), col(BillingAccount.stripe_customer_id)).join(
            Parent, col(Parent.id) == col(BillingAccount.parent_id)
        )
        accounts = {row[0]: (row[1], row[2]) for row in await session.execute(query)}
    assert len(accounts) == 4
    for email, (parent_id, customer_id) in accounts.items():
        assert await _customers(client, email, parent_id) == [customer_id]


async def test_a_refused_import_names_what_it_refused(sessions: SessionFactory, settings: Settings) -> None:
    # No calendar: the weekly lessons have no semester to go into; nothing else is written either.
    before = await counts(sessions)
    with pytest.raises(ImportRefused) as refused:
        await import_school(settings, sessions, sample_school())
    assert len(refused.value.problems) == 6
    assert {p.message for p in refused.value.problems} == {
        "weekday: no lesson is left to book: the school's calendar has no semester ahead"
    }
    assert await counts(sessions) == before


async def test_my_music_staffs_student_list_moves_in(sessions: SessionFactory, settings: Settings) -> None:
    await calendar(sessions, settings)
    request = ImportRequest(
        sample("sample", "teachers"),
        sample("mymusicstaff", "students"),
        sample("mymusicstaff", "lessons"),
        fmt="mymusicstaff",
        privacy_accepted_on=date(2026, 9, 1),
    )
    made = await import_school(settings, sessions, request)
    assert made.lines()[:4] == [
        "teachers: 3 created, 0 unchanged",
        "families: 2 created, 0 unchanged",
        "students: 3 created, 0 unchanged",
        "weekly lessons: 3 created, 0 unchanged",
    ]
    async with transaction(sessions) as session:
        names = set(await session.scalars(select(col(Student.first_name))))
        assert names == {"Noah", "Ella", "Arjun"}  # Sofia is inactive in My Music Staff
        ella = await session.scalar(select(Student).where(col(Student.first_name) == "Ella"))
        assert ella is not None
        assert ella.date_of_birth == date(2018, 1, 9)
        privacy = await session.scalars(select(col(Consent.granted)).where(col(Consent.kind) == "privacy_policy"))
        assert list(privacy) == [True, True]
    assert sum((await import_school(settings, sessions, request)).created.values()) == 0


async def test_teachers_first_and_families_with_lessons_later(sessions: SessionFactory, settings: Settings) -> None:
    await calendar(sessions, settings)
    teachers = await import_school(settings, sessions, ImportRequest(teachers=sample("sample", "teachers")))
    assert teachers.lines() == ["teachers: 3 created, 0 unchanged", "import: 3 created, 0 unchanged"]
    # The lessons are checked against the teachers Cedar now has: their availability and capacity.
    rest = ImportRequest(families=sample("sample", "families"), lessons=sample("sample", "lessons"))
    made = await import_school(settings, sessions, rest)
    assert made.created["weekly lessons"] == 6
    async with transaction(sessions) as session:
        loads = sorted(await session.scalars(select(col(Teacher.active_students))))
    assert loads == [1, 2, 3]
