"""The import's reading and rules, without a server (domain/school_import.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from domain.calendar import Closure, WeeklyWindow
from domain.school_import import (
    ExistingTeacher,
    ImportFile,
    Problem,
    SchoolContext,
    lesson_weeks,
    read_school,
)

SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "import"
TZ = ZoneInfo("America/Vancouver")
TEACHERS = "first_name,last_name,email,instruments,availability,capacity,hourly_rate,bio\n"
FAMILIES = (
    "parent_first_name,parent_last_name,email,phone,student_first_name,student_last_name,date_of_birth,"
    "privacy_policy_accepted_on,marketing_email_accepted_on,policy_version\n"
)
LESSONS = "email,student_first_name,teacher_email,instrument,weekday,start_time,minutes,billing_interval,start_date\n"


def context(**overrides: object) -> SchoolContext:
    values: dict[str, object] = {
        "today": date(2026, 12, 6),
        "now": datetime(2026, 12, 6, 20, 0, tzinfo=UTC),
        "timezone": TZ,
        "instruments": frozenset({"piano", "guitar", "bass"}),
        "lesson_lengths": frozenset({30, 45, 60}),
        "min_age": 4,
        "max_age": 18,
        "semesters": ((date(2026, 9, 8), date(2027, 1, 31)),),
        "closures": (Closure(date(2026, 12, 21), date(2027, 1, 3)),),
    }
    values.update(overrides)
    return SchoolContext(**values)  # type: ignore[arg-type]


def sample(folder: str, name: str) -> ImportFile:
    return ImportFile(f"{name}.csv", (SAMPLE / folder / f"{name}.csv").read_text(encoding="utf-8"))


def messages(problems: list[Problem]) -> list[str]:
    return [str(p) for p in problems]


def test_the_sample_school_reads_without_a_problem() -> None:
    school, problems = read_school(
        context(), sample("sample", "teachers"), sample("sample", "families"), sample("sample", "lessons")
    )
    assert problems == []
    assert [t.email for t in school.teachers] == [
        "clara.nguyen@riverside.example",
        "tomas.okafor@riverside.example",
        "ines.berg@riverside.example",
    ]
    tomas = school.teachers[1]
    assert tomas.instruments == ("guitar", "bass")
    assert tomas.availability == (WeeklyWindow(1, time(16), time(20)), WeeklyWindow(3, time(16), time(20)))
    assert tomas.hourly_rate_minor == 4500
    assert len(school.families) == 4
    reyes = school.families[0]
    assert [c.first_name for c in reyes.children] == ["Lucas", "Maya"]
    assert reyes.marketing_email_on == date(2025, 9, 2)
    assert school.families[1].marketing_email_on is None
    assert len(school.lessons) == 6


def test_my_music_staff_students_become_families_of_active_students() -> None:
    school, problems = read_school(
        context(),
        sample("sample", "teachers"),
        sample("mymusicstaff", "students"),
        sample("mymusicstaff", "lessons"),
        fmt="mymusicstaff",
        privacy_accepted_on=date(2026, 9, 1),
    )
    assert problems == []
    assert [(f.email, [c.first_name for c in f.children]) for f in school.families] == [
        ("erin.walsh@example.com", ["Noah", "Ella"]),
        ("priya.patel@example.com", ["Arjun"]),
    ]
    assert school.families[0].children[1].date_of_birth == date(2018, 1, 9)
    assert school.families[1].phone == "604-555-0112"  # the home phone when there is no mobile


def test_my_music_staff_without_the_consent_date_is_missing_consent() -> None:
    _, problems = read_school(context(), families=sample("mymusicstaff", "students"), fmt="mymusicstaff")
    assert len(problems) == 3
    assert all("missing consent" in p.message and p.column == 8 for p in problems)


def test_every_problem_is_reported_with_its_line_and_column() -> None:
    teachers = ImportFile(
        "t.csv",
        TEACHERS
        + "Ana,Lee,ana@school.example,piano,Mon 15:00-18:00; Mon 17:00-19:00,1,40,\n"
        + "Bo,Kim,ana@school.example,flute,Tue 25:00-26:00,x,,\n",
    )
    families = ImportFile(
        "f.csv",
        FAMILIES
        + "Jo,Park,jo@example.com,555,Mia,Park,2024-01-01,2025-01-01,,\n"
        + "Al,Roy,al@example.com,555,Tim,Roy,2015-01-01,,,\n"
        + "Cy,Doe,ana@school.example,555,Kit,Doe,2015-01-01,2025-01-01,,\n",
    )
    lessons = ImportFile(
        "l.csv",
        LESSONS
        + "jo@example.com,Mia,nobody@school.example,piano,Mon,15:00,30,month,\n"
        + "al@example.com,Tom,ana@school.example,piano,Mon,15:00,30,month,\n"
        + "al@example.com,Tim,ana@school.example,piano,Mon,19:30,30,month,\n"
        + "jo@example.com,Mia,ana@school.example,guitar,Funday,9:75,20,year,\n",
    )
    _, problems = read_school(context(), teachers, families, lessons)
    assert messages(problems) == [
        "t.csv:2:5: availability: 'Mon 17:00-19:00' overlaps 'Mon 15:00-18:00'",
        "t.csv:3:3: email: duplicate email ana@school.example (also on line 2)",
        "t.csv:3:4: instruments: the school has no instrument 'flute'",
        "t.csv:3:5: availability: 'Tue 25:00-26:00' is not a window (write e.g. 'Mon 15:00-20:00')",
        "t.csv:3:6: capacity: 'x' is not a whole number",
        "f.csv:2:7: date_of_birth: students must be at least 4 years old; this student is 2",
        "f.csv:3:8: privacy_policy_accepted_on: missing consent: the date the family accepted the privacy policy",
        "f.csv:4:3: email: duplicate email ana@school.example (a teacher's, teachers file line 2)",
        "l.csv:2:3: teacher_email: unknown teacher nobody@school.example (not in the teachers file)",
        "l.csv:3:2: student_first_name: unknown student Tom of al@example.com (not in the families file)",
        "l.csv:4:6: start_time: Mon 19:30-20:00 is outside ana@school.example's availability",
        "l.csv:5:4: instrument: ana@school.example does not teach guitar",
        "l.csv:5:5: weekday: 'Funday' is not a weekday (write Mon … Sun)",
        "l.csv:5:6: start_time: '9:75' is not a time of day (write HH:MM, 24-hour)",
        "l.csv:5:7: minutes: lessons last 30, 45, 60 minutes, not 20",
        "l.csv:5:8: billing_interval: 'year' is not one of: week, month",
    ]


def test_lessons_that_overlap_or_exceed_a_capacity_are_refused() -> None:
    teachers = ImportFile("t.csv", TEACHERS + "Ana,Lee,ana@school.example,piano;guitar,Mon 15:00-18:00,2,,\n")
    families = ImportFile(
        "f.csv",
        FAMILIES
        + "Jo,Park,jo@example.com,555,Mia,Park,2015-01-01,2025-01-01,,\n"
        + "Jo,Park,jo@example.com,555,Leo,Park,2016-01-01,2025-01-01,,\n"
        + "Jo,Park,jo@example.com,555,Ivy,Park,2017-01-01,2025-01-01,,\n",
    )
    lessons = ImportFile(
        "l.csv",
        LESSONS
        + "jo@example.com,Mia,ana@school.example,piano,Mon,15:00,45,month,\n"
        + "jo@example.com,Leo,ana@school.example,piano,Mon,15:30,30,month,\n"
        + "jo@example.com,Mia,ana@school.example,piano,Mon,16:00,30,month,\n"
        + "jo@example.com,Ivy,ana@school.example,piano,Mon,17:00,30,month,\n",
    )
    _, problems = read_school(context(), teachers, families, lessons)
    assert messages(problems) == [
        "l.csv:3:6: start_time: overlaps ana@school.example's lesson on line 2",
        "l.csv:4:4: instrument: the student already has a piano lesson on line 2",
        "l.csv:5:3: teacher_email: ana@school.example is over capacity (2 students)",
    ]


def test_what_the_school_has_counts_on_a_second_run() -> None:
    existing = ExistingTeacher(frozenset({"piano"}), (WeeklyWindow(0, time(15), time(18)),), 1, 1)
    lessons = ImportFile(
        "l.csv",
        LESSONS
        + "jo@example.com,Mia,ana@school.example,piano,Mon,15:00,30,month,\n"
        + "jo@example.com,Leo,ana@school.example,piano,Mon,16:00,30,month,\n",
    )
    known = context(
        teachers={"ana@school.example": existing},
        students=frozenset({("jo@example.com", "mia"), ("jo@example.com", "leo")}),
        live_enrollments=frozenset({("jo@example.com", "mia", "piano")}),
    )
    _, problems = read_school(known, lessons=lessons)
    # Mia's lesson was imported before (already counted); Leo's would be the teacher's second student.
    assert messages(problems) == ["l.csv:3:3: teacher_email: ana@school.example is over capacity (1 students)"]


def test_an_inactive_teacher_takes_no_lesson() -> None:
    gone = ExistingTeacher(frozenset({"piano"}), (WeeklyWindow(0, time(15), time(18)),), 5, 0, is_active=False)
    lessons = ImportFile("l.csv", LESSONS + "jo@example.com,Mia,ana@school.example,piano,Mon,15:00,30,month,\n")
    known = context(teachers={"ana@school.example": gone}, students=frozenset({("jo@example.com", "mia")}))
    _, problems = read_school(known, lessons=lessons)
    assert messages(problems) == ["l.csv:2:3: teacher_email: ana@school.example is no longer an active teacher"]


def test_a_missing_column_is_one_problem_on_the_header() -> None:
    _, problems = read_school(context(), teachers=ImportFile("t.csv", "first_name,last_name,email\nA,B,c@d.ef\n"))
    assert messages(problems) == [
        "t.csv:1:4: missing column 'instruments'",
        "t.csv:1:4: missing column 'availability'",
        "t.csv:1:4: missing column 'capacity'",
    ]


def test_weeks_run_to_the_semester_end_and_skip_closures() -> None:
    weeks = lesson_weeks(context(), 0, time(16), 30, datetime(2026, 12, 6, 20, 0, tzinfo=UTC))
    days = [start.astimezone(TZ).date() for start, _ in weeks]
    assert days[0] == date(2026, 12, 7)
    assert date(2026, 12, 21) not in days
    assert date(2026, 12, 28) not in days
    assert days[-1] == date(2027, 1, 25)
    assert all(start.astimezone(TZ).time() == time(16) for start, _ in weeks)


def test_no_semester_ahead_leaves_no_lesson_to_book() -> None:
    families = ImportFile("f.csv", FAMILIES + "Jo,Park,jo@example.com,555,Mia,Park,2015-01-01,2025-01-01,,\n")
    teachers = ImportFile("t.csv", TEACHERS + "Ana,Lee,ana@school.example,piano,Mon 15:00-18:00,2,,\n")
    lessons = ImportFile("l.csv", LESSONS + "jo@example.com,Mia,ana@school.example,piano,Mon,15:00,30,week,\n")
    _, problems = read_school(context(semesters=()), teachers, families, lessons)
    assert messages(problems) == [
        "l.csv:2:5: weekday: no lesson is left to book: the school's calendar has no semester ahead"
    ]
