"""Moving a school in: reading its teachers, families and weekly lessons from CSV, and every rule they must meet
before anything is written (``scripts/import_school.py`` writes them; the format is in docs/import.md).

Everything here is pure: the files come in as text, what the database already holds comes in as a
:class:`SchoolContext`, and every problem comes out as a :class:`Problem` (file, line, column, message) so the
office can fix all of them in one pass.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Literal
from zoneinfo import ZoneInfo

from domain.calendar import Closure, WeeklyWindow, weekly_occurrences
from domain.enrollment_flow import lesson_term
from domain.enrollment_rules import check_age

__all__ = [
    "FAMILY_COLUMNS",
    "LESSON_COLUMNS",
    "MYMUSICSTAFF_COLUMNS",
    "TEACHER_COLUMNS",
    "ChildIn",
    "ExistingTeacher",
    "FamilyIn",
    "ImportFile",
    "LessonIn",
    "Problem",
    "SchoolContext",
    "SchoolIn",
    "TeacherIn",
    "lesson_weeks",
    "read_school",
    "student_key",
]

Format = Literal["cedar", "mymusicstaff"]

TEACHER_COLUMNS = ("first_name", "last_name", "email", "instruments", "availability", "capacity", "hourly_rate", "bio")
TEACHER_OPTIONAL = frozenset({"hourly_rate", "bio"})
FAMILY_COLUMNS = (
    "parent_first_name",
    "parent_last_name",
    "email",
    "phone",
    "student_first_name",
    "student_last_name",
    "date_of_birth",
    "privacy_policy_accepted_on",
    "marketing_email_accepted_on",
    "policy_version",
)
FAMILY_OPTIONAL = frozenset(
    {"student_first_name", "student_last_name", "date_of_birth", "marketing_email_accepted_on", "policy_version"}
)
LESSON_COLUMNS = (
    "email",
    "student_first_name",
    "teacher_email",
    "instrument",
    "weekday",
    "start_time",
    "minutes",
    "billing_interval",
    "start_date",
)
LESSON_OPTIONAL = frozenset({"start_date"})

# My Music Staff's student list export → Cedar's family columns (headers matched without regard to case).
MYMUSICSTAFF_COLUMNS: dict[str, tuple[str, ...]] = {
    "student_first_name": ("First Name",),
    "student_last_name": ("Last Name",),
    "date_of_birth": ("Birthday",),
    "parent_first_name": ("Parent First Name",),
    "parent_last_name": ("Parent Last Name",),
    "email": ("Parent Email",),
    "phone": ("Parent Mobile Phone", "Parent Home Phone"),
    # An adult student has no parent: they are their own family.
    "student_email": ("Email",),
    "student_phone": ("Mobile Phone", "Home Phone"),
    "status": ("Status",),
}
MYMUSICSTAFF_REQUIRED = ("First Name", "Last Name", "Birthday", "Status")

WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            ("mon", "monday"),
            ("tue", "tues", "tuesday"),
            ("wed", "wednesday"),
            ("thu", "thur", "thurs", "thursday"),
            ("fri", "friday"),
            ("sat", "saturday"),
            ("sun", "sunday"),
        )
    )
    for name in names
}
WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
BILLING_INTERVALS = ("week", "month")
DATE_FORMATS = ("%Y-%m-%d", "%b %d, %Y", "%B %d, %Y")
_WINDOW = re.compile(r"^\s*([A-Za-z]+)\s+(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})\s*$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
NAME_MAX, EMAIL_MAX, PHONE_MAX, BIO_MAX, VERSION_MAX = 100, 254, 32, 2000, 32


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong, where the office finds it: ``families.csv:7:7: date_of_birth: …`` (line 1 is the header,
    columns count from 1)."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


@dataclass(frozen=True)
class ImportFile:
    name: str  # as the office named it: problems point here
    text: str


@dataclass(frozen=True)
class TeacherIn:
    line: int
    first_name: str
    last_name: str
    email: str
    instruments: tuple[str, ...]
    availability: tuple[WeeklyWindow, ...]
    capacity: int
    hourly_rate_minor: int
    bio: str


@dataclass(frozen=True)
class ChildIn:
    line: int
    first_name: str
    last_name: str
    date_of_birth: date


@dataclass(frozen=True)
class FamilyIn:
    line: int
    first_name: str
    last_name: str
    email: str
    phone: str
    privacy_policy_on: date | None  # None only in a file with problems, which is never written
    marketing_email_on: date | None
    policy_version: str | None
    children: tuple[ChildIn, ...]


@dataclass(frozen=True)
class LessonIn:
    line: int
    email: str  # the family's
    student_first_name: str
    teacher_email: str
    instrument: str
    weekday: int
    start: time
    minutes: int
    billing_interval: str
    start_date: date | None

    @property
    def window(self) -> WeeklyWindow:
        return WeeklyWindow(self.weekday, self.start, _add(self.start, self.minutes))


@dataclass(frozen=True)
class SchoolIn:
    teachers: tuple[TeacherIn, ...] = ()
    families: tuple[FamilyIn, ...] = ()
    lessons: tuple[LessonIn, ...] = ()


@dataclass(frozen=True)
class ExistingTeacher:
    instruments: frozenset[str]
    availability: tuple[WeeklyWindow, ...]
    capacity: int
    active_students: int
    is_active: bool = True


@dataclass(frozen=True)
class SchoolContext:
    """What the school already has, read by the importer before validating."""

    today: date
    now: datetime
    timezone: ZoneInfo
    instruments: frozenset[str]
    lesson_lengths: frozenset[int]
    min_age: int
    max_age: int
    semesters: tuple[tuple[date, date], ...] = ()
    closures: tuple[Closure, ...] = ()
    user_roles: Mapping[str, str] = field(default_factory=dict)  # email → role
    teachers: Mapping[str, ExistingTeacher] = field(default_factory=dict)  # by email
    students: frozenset[tuple[str, str]] = frozenset()  # student_key of each child the school has
    live_enrollments: frozenset[tuple[str, str, str]] = frozenset()  # (*student_key, instrument)


def student_key(email: str, first_name: str) -> tuple[str, str]:
    """A child is known by their family's address and first name, as enrollments find a sibling."""
    return email.strip().lower(), first_name.strip().lower()


def lesson_weeks(
    context: SchoolContext, weekday: int, start: time, minutes: int, from_: datetime
) -> list[tuple[datetime, datetime]]:
    """The weekly lesson's (start, end) instants for the rest of the current semester (or the next one, between
    semesters), closures skipped: the terms an enrollment's regular lessons go into."""
    terms = lesson_term(context.semesters, context.closures, from_.astimezone(context.timezone).date())
    for term in terms:
        weeks = weekly_occurrences(term, weekday, start, timedelta(minutes=minutes), context.timezone, from_)
        if weeks:
            return weeks
    return []


def lesson_from(context: SchoolContext, lesson: LessonIn) -> datetime:
    """Lessons are booked from now, or from the lesson's start date if it is later."""
    if lesson.start_date is None or lesson.start_date <= context.today:
        return context.now
    return datetime.combine(lesson.start_date, time(0), tzinfo=context.timezone)


# --- reading cells ----------------------------------------------------------------------------------------------


class _Row:
    """One CSV record: its cells by column name, and where each cell is, so a problem can point at it."""

    def __init__(self, file: str, line: int, cells: dict[str, tuple[str, int]], problems: list[Problem]) -> None:
        self.file, self.line, self._cells, self._problems = file, line, cells, problems
        self.ok = True

    def column(self, name: str) -> int:
        return self._cells.get(name, ("", 1))[1]

    def problem(self, name: str, message: str) -> None:
        self.ok = False
        self._problems.append(Problem(self.file, self.line, self.column(name), f"{name}: {message}"))

    def raw(self, name: str) -> str:
        return self._cells.get(name, ("", 0))[0].strip()

    def text(self, name: str, max_length: int, required: bool = True) -> str:
        value = self.raw(name)
        if not value and required:
            self.problem(name, "is empty")
        elif len(value) > max_length:
            self.problem(name, f"is longer than {max_length} characters")
        return value

    def email(self, name: str) -> str:
        value = self.text(name, EMAIL_MAX).lower()
        if value and not _EMAIL.match(value):
            self.problem(name, f"{value!r} is not an email address")
        return value

    def integer(self, name: str, low: int, high: int) -> int:
        value = self.raw(name)
        try:
            number = int(value)
        except ValueError:
            self.problem(name, f"{value!r} is not a whole number" if value else "is empty")
            return low
        if not low <= number <= high:
            self.problem(name, f"{number} is not between {low} and {high}")
        return number

    def day(self, name: str, required: bool = True) -> date | None:
        value = self.raw(name)
        if not value:
            if required:
                self.problem(name, "is empty")
            return None
        for fmt in DATE_FORMATS:
            try:
                return datetime.strptime(value, fmt).date()
            except ValueError:
                continue
        self.problem(name, f"{value!r} is not a date (write YYYY-MM-DD)")
        return None

    def clock(self, name: str) -> time | None:
        value = self.raw(name)
        parsed = _time(value)
        if parsed is None:
            self.problem(name, f"{value!r} is not a time of day (write HH:MM, 24-hour)" if value else "is empty")
        return parsed


def _time(value: str) -> time | None:
    if not re.fullmatch(r"\d{1,2}:\d{2}", value):
        return None
    hours, minutes = (int(part) for part in value.split(":"))
    return time(hours, minutes) if hours < 24 and minutes < 60 else None


def _add(start: time, minutes: int) -> time:
    end = datetime.combine(date.min, start) + timedelta(minutes=minutes)
    return end.time() if end.date() == date.min else time.max


def _weekday(value: str) -> int | None:
    return WEEKDAYS.get(value.strip().lower())


def _records(
    source: ImportFile,
    columns: Mapping[str, tuple[str, ...]],
    required: Iterable[str],
    problems: list[Problem],
) -> list[_Row]:
    """The file's rows, each cell under the name ``columns`` gives it (a name → the headers it may come from, the
    first filled one wins); a missing required header is one problem on line 1 and no rows."""
    reader = csv.reader(io.StringIO(source.text.lstrip("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None:
        problems.append(Problem(source.name, 1, 1, "the file is empty (it needs a header line)"))
        return []
    positions = {name.strip().lower(): index for index, name in enumerate(header)}
    where: dict[str, list[int]] = {}
    for name, headers in columns.items():
        found = [positions[h.lower()] for h in headers if h.lower() in positions]
        if found:
            where[name] = found
    missing = [h for h in required if h.lower() not in positions]
    for header_name in missing:
        problems.append(Problem(source.name, 1, len(header) + 1, f"missing column {header_name!r}"))
    if missing:
        return []
    rows = []
    for values in reader:
        if not any(v.strip() for v in values):
            continue
        cells = {name: _first_filled(values, found) for name, found in where.items()}
        rows.append(_Row(source.name, reader.line_num, cells, problems))
    return rows


def _first_filled(values: Sequence[str], positions: Sequence[int]) -> tuple[str, int]:
    """The first of the cells that has a value (a mobile phone, else the home phone), with its column."""
    cells = [(values[i] if i < len(values) else "", i + 1) for i in positions]
    return next((cell for cell in cells if cell[0].strip()), cells[0])


def _own(names: Sequence[str]) -> dict[str, tuple[str, ...]]:
    return {name: (name,) for name in names}


# --- the three files ----------------------------------------------------------------------------------------


def _teachers(source: ImportFile, context: SchoolContext, problems: list[Problem]) -> list[TeacherIn]:
    required = [c for c in TEACHER_COLUMNS if c not in TEACHER_OPTIONAL]
    teachers: list[TeacherIn] = []
    seen: dict[str, int] = {}
    for row in _records(source, _own(TEACHER_COLUMNS), required, problems):
        email = row.email("email")
        if email in seen:
            row.problem("email", f"duplicate email {email} (also on line {seen[email]})")
        elif email:
            seen[email] = row.line
            role = context.user_roles.get(email)
            if role is not None and role != "teacher" and email not in context.teachers:
                row.problem("email", f"{email} already belongs to a {role} account")
        instruments = tuple(dict.fromkeys(i.strip().lower() for i in re.split(r"[;,]", row.raw("instruments"))))
        instruments = tuple(i for i in instruments if i)
        if not instruments:
            row.problem("instruments", "is empty")
        for unknown in (i for i in instruments if i not in context.instruments):
            row.problem("instruments", f"the school has no instrument {unknown!r}")
        availability = _availability(row)
        hourly = _money(row, "hourly_rate")
        teacher = TeacherIn(
            line=row.line,
            first_name=row.text("first_name", NAME_MAX),
            last_name=row.text("last_name", NAME_MAX),
            email=email,
            instruments=instruments,
            availability=availability,
            capacity=row.integer("capacity", 0, 1000),
            hourly_rate_minor=hourly,
            bio=row.text("bio", BIO_MAX, required=False),
        )
        if email and seen.get(email) == row.line:
            teachers.append(teacher)  # even with problems: the lessons file is checked against every teacher
    return teachers


def _availability(row: _Row) -> tuple[WeeklyWindow, ...]:
    """``Mon 15:00-20:00; Wed 15:00-20:00``: windows of local time, none overlapping another of the same day."""
    windows: list[WeeklyWindow] = []
    value = row.raw("availability")
    if not value:
        row.problem("availability", "is empty")
    for part in (p for p in value.split(";") if p.strip()):
        matched = _WINDOW.match(part)
        weekday = _weekday(matched.group(1)) if matched else None
        start = _time(matched.group(2)) if matched else None
        end = _time(matched.group(3)) if matched else None
        if weekday is None or start is None or end is None:
            row.problem("availability", f"{part.strip()!r} is not a window (write e.g. 'Mon 15:00-20:00')")
            continue
        if end <= start:
            row.problem("availability", f"{part.strip()!r} ends before it starts")
            continue
        window = WeeklyWindow(weekday, start, end)
        for other in windows:
            if other.weekday == weekday and other.start < end and start < other.end:
                row.problem("availability", f"{part.strip()!r} overlaps {_window_text(other)!r}")
        windows.append(window)
    return tuple(sorted(windows))


def _window_text(window: WeeklyWindow) -> str:
    return f"{WEEKDAY_NAMES[window.weekday]} {window.start:%H:%M}-{window.end:%H:%M}"


def _money(row: _Row, name: str) -> int:
    value = row.raw(name).lstrip("$")
    if not value:
        return 0
    try:
        amount = Decimal(value)
    except InvalidOperation:
        row.problem(name, f"{value!r} is not an amount (write e.g. 42.50)")
        return 0
    if amount < 0 or amount != amount.quantize(Decimal("0.01")):
        row.problem(name, f"{value!r} is not an amount in dollars and cents")
        return 0
    return int(amount * 100)


def _families(
    source: ImportFile, context: SchoolContext, problems: list[Problem], fmt: Format, consents_on: date | None
) -> list[FamilyIn]:
    if fmt == "mymusicstaff":
        rows = [
            r
            for r in _records(source, MYMUSICSTAFF_COLUMNS, MYMUSICSTAFF_REQUIRED, problems)
            if r.raw("status").lower() == "active"
        ]
    else:
        required = [c for c in FAMILY_COLUMNS if c not in FAMILY_OPTIONAL]
        rows = _records(source, _own(FAMILY_COLUMNS), required, problems)
    families: dict[str, FamilyIn] = {}
    lines: dict[str, int] = {}
    for row in rows:
        family = _family_row(row, context, fmt, consents_on)
        if family is None:
            continue
        first = families.get(family.email)
        if first is None:
            families[family.email] = family
            lines[family.email] = row.line
            continue
        if (first.first_name, first.last_name, first.phone) != (family.first_name, family.last_name, family.phone):
            row.problem("email", f"the parent differs from line {lines[family.email]} of the same family")
            continue
        known = {child.first_name.lower(): child for child in first.children}
        for child in family.children:
            if child.first_name.lower() in known:
                row.problem("student_first_name", f"{child.first_name} is twice in the family (line {first.line})")
            else:
                first = replace(first, children=(*first.children, child))
        families[family.email] = first
    return list(families.values())


def _family_row(row: _Row, context: SchoolContext, fmt: Format, consents_on: date | None) -> FamilyIn | None:
    if fmt == "mymusicstaff" and not row.raw("email"):
        # An adult student: their own contact is the family's.
        first, last = row.text("student_first_name", NAME_MAX), row.text("student_last_name", NAME_MAX)
        email, phone = row.email("student_email"), row.text("student_phone", PHONE_MAX)
    else:
        first, last = row.text("parent_first_name", NAME_MAX), row.text("parent_last_name", NAME_MAX)
        email, phone = row.email("email"), row.text("phone", PHONE_MAX)
    role = context.user_roles.get(email)
    if role is not None and role != "parent":
        row.problem("email", f"{email} already belongs to a {role} account")
    if fmt == "mymusicstaff":
        privacy, marketing, version = consents_on, None, None
        if privacy is None:
            row.problem(
                "status",
                "missing consent: My Music Staff does not record the privacy policy's acceptance "
                "(give --privacy-accepted-on)",
            )
    else:
        privacy = row.day("privacy_policy_accepted_on", required=False)
        if not row.raw("privacy_policy_accepted_on"):
            row.problem(
                "privacy_policy_accepted_on", "missing consent: the date the family accepted the privacy policy"
            )
        marketing = row.day("marketing_email_accepted_on", required=False)
        version = row.text("policy_version", VERSION_MAX, required=False) or None
    for name, when in (("privacy_policy_accepted_on", privacy), ("marketing_email_accepted_on", marketing)):
        if when is not None and when > context.today:
            row.problem(name, f"{when.isoformat()} is in the future")
    children: tuple[ChildIn, ...] = ()
    child_cells = ("student_first_name", "student_last_name", "date_of_birth")
    if fmt == "mymusicstaff" or any(row.raw(c) for c in child_cells):
        child_first = row.text("student_first_name", NAME_MAX)
        child_last = row.text("student_last_name", NAME_MAX, required=False) or last
        born = row.day("date_of_birth")
        if born is not None and student_key(email, child_first) not in context.students:
            problem = check_age(born, context.today, context.min_age, context.max_age)
            if problem is not None:
                row.problem("date_of_birth", problem)
        if born is not None:
            children = (ChildIn(row.line, child_first, child_last, born),)
    if not email:
        return None
    # Even with problems: the lessons file is checked against every family.
    return FamilyIn(row.line, first, last, email, phone, privacy, marketing, version, children)


def _lessons(
    source: ImportFile,
    context: SchoolContext,
    problems: list[Problem],
    teachers: Mapping[str, TeacherIn],
    families: Mapping[str, FamilyIn],
) -> list[LessonIn]:
    required = [c for c in LESSON_COLUMNS if c not in LESSON_OPTIONAL]
    lessons: list[LessonIn] = []
    for row in _records(source, _own(LESSON_COLUMNS), required, problems):
        lesson = _lesson_row(row, context, teachers, families)
        if lesson is not None:
            lessons.append(lesson)
    _check_schedule(lessons, context, teachers, source.name, problems)
    return lessons


def _lesson_row(
    row: _Row, context: SchoolContext, teachers: Mapping[str, TeacherIn], families: Mapping[str, FamilyIn]
) -> LessonIn | None:
    email = row.email("email")
    first_name = row.text("student_first_name", NAME_MAX)
    key = student_key(email, first_name)
    family = families.get(email)
    in_file = family is not None and any(c.first_name.lower() == key[1] for c in family.children)
    if email and first_name and not in_file and key not in context.students:
        row.problem("student_first_name", f"unknown student {first_name} of {email} (not in the families file)")
    teacher_email = row.email("teacher_email")
    instrument = row.raw("instrument").lower()
    if instrument not in context.instruments:
        row.problem("instrument", f"the school has no instrument {instrument!r}")
    if teacher_email and teacher_email not in teachers and teacher_email not in context.teachers:
        row.problem("teacher_email", f"unknown teacher {teacher_email} (not in the teachers file)")
    elif teacher_email in context.teachers and not context.teachers[teacher_email].is_active:
        row.problem("teacher_email", f"{teacher_email} is no longer an active teacher")
    elif teacher_email and instrument not in _teacher_instruments(teacher_email, context, teachers):
        row.problem("instrument", f"{teacher_email} does not teach {instrument}")
    weekday = _weekday(row.raw("weekday"))
    if weekday is None:
        row.problem("weekday", f"{row.raw('weekday')!r} is not a weekday (write Mon … Sun)")
    start = row.clock("start_time")
    minutes = row.integer("minutes", 1, 24 * 60)
    if row.raw("minutes").isdigit() and minutes not in context.lesson_lengths:
        lengths = ", ".join(str(m) for m in sorted(context.lesson_lengths))
        row.problem("minutes", f"lessons last {lengths} minutes, not {minutes}")
    billing = row.raw("billing_interval").lower()
    if billing not in BILLING_INTERVALS:
        row.problem("billing_interval", f"{billing!r} is not one of: {', '.join(BILLING_INTERVALS)}")
    start_date = row.day("start_date", required=False)
    if start is not None and _add(start, minutes) == time.max:
        row.problem("minutes", "the lesson would end after midnight")
    if not row.ok or weekday is None or start is None:
        return None
    lesson = LessonIn(
        row.line, email, first_name, teacher_email, instrument, weekday, start, minutes, billing, start_date
    )
    windows = _teacher_availability(teacher_email, context, teachers)
    if not any(w.weekday == weekday and w.contains(lesson.window.start, lesson.window.end) for w in windows):
        row.problem("start_time", f"{_window_text(lesson.window)} is outside {teacher_email}'s availability")
    if (*key, instrument) not in context.live_enrollments and not lesson_weeks(
        context, weekday, start, minutes, lesson_from(context, lesson)
    ):
        row.problem("weekday", "no lesson is left to book: the school's calendar has no semester ahead")
    return lesson if row.ok else None


def _teacher_instruments(email: str, context: SchoolContext, teachers: Mapping[str, TeacherIn]) -> frozenset[str]:
    if email in context.teachers:
        return context.teachers[email].instruments
    return frozenset(teachers[email].instruments) if email in teachers else frozenset()


def _teacher_availability(
    email: str, context: SchoolContext, teachers: Mapping[str, TeacherIn]
) -> tuple[WeeklyWindow, ...]:
    if email in context.teachers:
        return context.teachers[email].availability
    return teachers[email].availability if email in teachers else ()


def _check_schedule(
    lessons: Sequence[LessonIn],
    context: SchoolContext,
    teachers: Mapping[str, TeacherIn],
    file: str,
    problems: list[Problem],
) -> None:
    """Across rows: one live lesson per student and instrument, no two lessons of a teacher (or of a student) at
    once, and no teacher given more students than their capacity."""
    columns = {name: index + 1 for index, name in enumerate(LESSON_COLUMNS)}
    taken: dict[tuple[str, str, str], int] = {}
    load: dict[str, int] = {}
    for index, lesson in enumerate(lessons):
        key = (*student_key(lesson.email, lesson.student_first_name), lesson.instrument)
        if key in taken:
            message = f"instrument: the student already has a {lesson.instrument} lesson on line {taken[key]}"
            problems.append(Problem(file, lesson.line, columns["instrument"], message))
            continue
        taken[key] = lesson.line
        for other in lessons[:index]:
            same_teacher = other.teacher_email == lesson.teacher_email
            same_student = student_key(other.email, other.student_first_name) == key[:2]
            if (same_teacher or same_student) and _overlap(other.window, lesson.window):
                who = f"{lesson.teacher_email}'s" if same_teacher else "the student's"
                message = f"start_time: overlaps {who} lesson on line {other.line}"
                problems.append(Problem(file, lesson.line, columns["start_time"], message))
        if key in context.live_enrollments:
            continue  # imported before: already counted in the teacher's students
        existing = context.teachers.get(lesson.teacher_email)
        capacity = existing.capacity if existing else teachers[lesson.teacher_email].capacity
        load[lesson.teacher_email] = load.get(lesson.teacher_email, existing.active_students if existing else 0) + 1
        if load[lesson.teacher_email] > capacity:
            message = f"teacher_email: {lesson.teacher_email} is over capacity ({capacity} students)"
            problems.append(Problem(file, lesson.line, columns["teacher_email"], message))


def _overlap(a: WeeklyWindow, b: WeeklyWindow) -> bool:
    return a.weekday == b.weekday and a.start < b.end and b.start < a.end


def read_school(
    context: SchoolContext,
    teachers: ImportFile | None = None,
    families: ImportFile | None = None,
    lessons: ImportFile | None = None,
    fmt: Format = "cedar",
    privacy_accepted_on: date | None = None,
) -> tuple[SchoolIn, list[Problem]]:
    """Every file read and every rule checked; the school is only to be written when the problems are none.
    ``fmt`` is the families file's format; ``privacy_accepted_on`` is when a My Music Staff school's families
    accepted its privacy policy (that export does not say)."""
    problems: list[Problem] = []
    read_teachers = _teachers(teachers, context, problems) if teachers else []
    read_families = _families(families, context, problems, fmt, privacy_accepted_on) if families else []
    by_email = {t.email: t for t in read_teachers}
    for family in read_families:
        if family.email in by_email:
            source = families.name if families else ""
            line = by_email[family.email].line
            message = f"email: duplicate email {family.email} (a teacher's, teachers file line {line})"
            problems.append(Problem(source, family.line, _column_of(fmt), message))
    read_lessons = (
        _lessons(lessons, context, problems, by_email, {f.email: f for f in read_families}) if lessons else []
    )
    school = SchoolIn(tuple(read_teachers), tuple(read_families), tuple(read_lessons))
    return school, sorted(problems, key=_order(teachers, families, lessons))


def _column_of(fmt: Format) -> int:
    return FAMILY_COLUMNS.index("email") + 1 if fmt == "cedar" else 1


def _order(*files: ImportFile | None) -> Callable[[Problem], tuple[int, int, int]]:
    names = [f.name for f in files if f is not None]
    return lambda p: (names.index(p.file) if p.file in names else len(names), p.line, p.column)
