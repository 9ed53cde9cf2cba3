"""Demo data for Cedar Heights Music Academy: ``python -m scripts.seed_demo`` (idempotent).

An admin, three teachers (one teaches two instruments) with weekly availability, the current academic year with
its semesters and closures, and a rate for every instrument and lesson length. Running it again changes nothing.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.db import create_engine, create_session_factory, transaction
from core.passwords import hash_password
from core.settings import Settings
from models import (
    AcademicYear,
    Closure,
    Instrument,
    LessonRate,
    Role,
    Semester,
    Teacher,
    TeacherAvailability,
    User,
)
from models.base import new_id

# Weekly price of a 30-minute lesson, in cents (CAD); longer lessons scale with their length.
BASE_WEEKLY_PRICE_30_MIN = {"piano": 3500, "guitar": 3200, "bass": 3200}
DEFAULT_BASE_WEEKLY_PRICE = 3300
WEEKS_PER_MONTH_BILLED = 4  # monthly plans bill four lessons, the way music schools quote them


@dataclass(frozen=True)
class DemoTeacher:
    first_name: str
    last_name: str
    email: str
    instruments: tuple[str, ...]
    capacity: int
    # (weekday 0=Monday, start, end) in the school's local time
    availability: tuple[tuple[int, time, time], ...]
    bio: str


DEMO_TEACHERS = (
    DemoTeacher(
        "Maya",
        "Lindqvist",
        "maya.lindqvist@cedarheights.example",
        ("piano",),
        25,
        ((0, time(15), time(20)), (2, time(15), time(20)), (4, time(14), time(19)), (5, time(9), time(13))),
        "Classical and contemporary piano; RCM examiner.",
    ),
    DemoTeacher(
        "Diego",
        "Ferreira",
        "diego.ferreira@cedarheights.example",
        ("guitar", "bass"),
        20,
        ((1, time(15), time(21)), (3, time(15), time(21)), (5, time(10), time(16))),
        "Rock, jazz and fingerstyle guitar; electric and upright bass.",
    ),
    DemoTeacher(
        "Aiko",
        "Tanaka",
        "aiko.tanaka@cedarheights.example",
        ("bass",),
        15,
        ((0, time(16), time(20)), (2, time(16), time(20)), (6, time(10), time(14))),
        "Electric bass, groove and reading.",
    ),
)
DEMO_TEACHER_PASSWORD = "cedar-teacher-demo"


def academic_year_start(today: date) -> int:
    """The school year runs September to August: in November 2026 it is the 2026-2027 year."""
    return today.year if today.month >= 9 else today.year - 1


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def demo_calendar(start_year: int) -> tuple[AcademicYear, list[Semester], list[Closure]]:
    y, n = start_year, start_year + 1
    year = AcademicYear(name=f"{y}-{n}", start_date=date(y, 9, 1), end_date=date(n, 8, 31))
    semesters = [
        Semester(academic_year_id=year.id, name="Fall", start_date=date(y, 9, 8), end_date=date(n, 1, 31)),
        Semester(academic_year_id=year.id, name="Spring", start_date=date(n, 2, 1), end_date=date(n, 6, 20)),
        Semester(academic_year_id=year.id, name="Summer", start_date=date(n, 7, 6), end_date=date(n, 8, 22)),
    ]
    closures = [
        (nth_weekday(y, 10, 0, 2), nth_weekday(y, 10, 0, 2), "Thanksgiving"),
        (date(y, 11, 11), date(y, 11, 11), "Remembrance Day"),
        (date(y, 12, 21), date(n, 1, 3), "Winter break"),
        (nth_weekday(n, 2, 0, 3), nth_weekday(n, 2, 0, 3), "Family Day"),
        (nth_weekday(n, 3, 0, 3), nth_weekday(n, 3, 0, 3) + timedelta(days=13), "Spring break"),
        (date(n, 7, 1), date(n, 7, 1), "Canada Day"),
    ]
    return (
        year,
        semesters,
        [Closure(academic_year_id=year.id, start_date=s, end_date=e, reason=r) for s, e, r in closures],
    )


async def _insert_missing(session: AsyncSession, model: type, rows: list[dict[str, object]], key: list[str]) -> None:
    if rows:
        await session.execute(insert(model).values(rows).on_conflict_do_nothing(index_elements=key))


async def seed_reference_data(session: AsyncSession, settings: Settings) -> None:
    """Instruments and rates: what every environment (tests included) needs."""
    await _insert_missing(
        session, Instrument, [{"code": code, "name": code.title()} for code in settings.instruments], ["code"]
    )
    rates = []
    for instrument in settings.instruments:
        base = BASE_WEEKLY_PRICE_30_MIN.get(instrument, DEFAULT_BASE_WEEKLY_PRICE)
        for minutes in settings.lesson_lengths_minutes:
            weekly = base * minutes // 30
            rates.append(
                {
                    "id": new_id(),
                    "instrument": instrument,
                    "minutes": minutes,
                    "weekly_price_minor": weekly,
                    "monthly_price_minor": weekly * WEEKS_PER_MONTH_BILLED,
                    "currency": settings.currency,
                }
            )
    await _insert_missing(session, LessonRate, rates, ["instrument", "minutes"])


async def seed_demo(session: AsyncSession, settings: Settings, today: date) -> None:
    await seed_reference_data(session, settings)

    admin_email = settings.demo_admin_email.lower()
    if await session.scalar(select(col(User.id)).where(col(User.email) == admin_email)) is None:
        session.add(User(email=admin_email, role=Role.admin, password_hash=hash_password(settings.demo_admin_password)))

    for demo in DEMO_TEACHERS:
        if await session.scalar(select(col(Teacher.id)).where(col(Teacher.email) == demo.email)) is not None:
            continue
        user = User(email=demo.email, role=Role.teacher, password_hash=hash_password(DEMO_TEACHER_PASSWORD))
        teacher = Teacher(
            user_id=user.id,
            first_name=demo.first_name,
            last_name=demo.last_name,
            display_name=f"{demo.first_name} {demo.last_name[0]}.",
            email=demo.email,
            instruments=list(demo.instruments),
            capacity=demo.capacity,
            bio=demo.bio,
        )
        session.add_all([user, teacher])
        await session.flush()
        session.add_all(
            TeacherAvailability(teacher_id=teacher.id, weekday=d, start_time=s, end_time=e)
            for d, s, e in demo.availability
        )

    year, semesters, closures = demo_calendar(academic_year_start(today))
    if await session.scalar(select(col(AcademicYear.id)).where(col(AcademicYear.name) == year.name)) is None:
        session.add(year)
        await session.flush()
        session.add_all([*semesters, *closures])


async def main() -> None:
    settings = Settings()
    engine = create_engine(settings)
    async with transaction(create_session_factory(engine)) as session:
        await seed_demo(session, settings, datetime.now(settings.timezone).date())
    await engine.dispose()
    print(f"demo data ready (admin {settings.demo_admin_email})")


if __name__ == "__main__":
    asyncio.run(main())
