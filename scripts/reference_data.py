"""The school's reference data: instruments, lesson rates and the academic calendar.

``python -m scripts.reference_data`` (run by ``deploy/prestart.sh`` on every deploy) loads each category only
into an empty table: once the office has rows of a kind, they are the office's to edit or delete, and a deploy
never re-creates or overwrites them. It never creates any user. The calendar comes from
``CEDAR_REFERENCE_DATA_FILE`` (JSON, see ``CalendarFile``) when set, else this school year's built-in calendar.
"""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.db import create_engine, create_session_factory, lock_keys, transaction
from core.settings import Settings
from models import AcademicYear, Closure, Instrument, LessonRate, Semester
from models.base import new_id

# Weekly price of a 30-minute lesson, in cents (CAD); longer lessons scale with their length.
BASE_WEEKLY_PRICE_30_MIN = {"piano": 3500, "guitar": 3200, "bass": 3200}
DEFAULT_BASE_WEEKLY_PRICE = 3300
WEEKS_PER_MONTH_BILLED = 4  # monthly plans bill four lessons, the way music schools quote them
REFERENCE_DATA_LOCK = "cedar-reference-data"


class ReferenceDataError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TermIn(_Strict):
    name: str
    start_date: date
    end_date: date


class ClosureIn(_Strict):
    start_date: date
    end_date: date
    reason: str


class AcademicYearIn(_Strict):
    name: str
    start_date: date
    end_date: date
    semesters: list[TermIn] = []
    closures: list[ClosureIn] = []


class CalendarFile(_Strict):
    """``{"academic_years": [{"name": "2026-2027", "start_date": "2026-09-01", "end_date": "2027-08-31",
    "semesters": [{"name": "Fall", "start_date": …, "end_date": …}], "closures": [{"start_date": …,
    "end_date": …, "reason": "Winter break"}]}]}``"""

    academic_years: list[AcademicYearIn]


def academic_year_start(today: date) -> int:
    """The school year runs September to August: in November 2026 it is the 2026-2027 year."""
    return today.year if today.month >= 9 else today.year - 1


def nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    first = date(year, month, 1)
    return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def default_calendar(start_year: int) -> AcademicYearIn:
    """Cedar Heights' usual year: three terms and British Columbia's school holidays."""
    y, n = start_year, start_year + 1
    closures = [
        (nth_weekday(y, 10, 0, 2), nth_weekday(y, 10, 0, 2), "Thanksgiving"),
        (date(y, 11, 11), date(y, 11, 11), "Remembrance Day"),
        (date(y, 12, 21), date(n, 1, 3), "Winter break"),
        (nth_weekday(n, 2, 0, 3), nth_weekday(n, 2, 0, 3), "Family Day"),
        (nth_weekday(n, 3, 0, 3), nth_weekday(n, 3, 0, 3) + timedelta(days=13), "Spring break"),
        (date(n, 7, 1), date(n, 7, 1), "Canada Day"),
    ]
    return AcademicYearIn(
        name=f"{y}-{n}",
        start_date=date(y, 9, 1),
        end_date=date(n, 8, 31),
        semesters=[
            TermIn(name="Fall", start_date=date(y, 9, 8), end_date=date(n, 1, 31)),
            TermIn(name="Spring", start_date=date(n, 2, 1), end_date=date(n, 6, 20)),
            TermIn(name="Summer", start_date=date(n, 7, 6), end_date=date(n, 8, 22)),
        ],
        closures=[ClosureIn(start_date=s, end_date=e, reason=r) for s, e, r in closures],
    )


def read_calendar_file(path: Path) -> list[AcademicYearIn]:
    try:
        return CalendarFile.model_validate_json(path.read_bytes()).academic_years
    except OSError as error:
        raise ReferenceDataError(f"CEDAR_REFERENCE_DATA_FILE: cannot read {path} ({error.strerror})") from error
    except ValidationError as error:
        raise ReferenceDataError(f"CEDAR_REFERENCE_DATA_FILE: {path} is not a valid calendar:\n{error}") from error


async def _is_empty(session: AsyncSession, model: type) -> bool:
    return await session.scalar(select(1).select_from(model).limit(1)) is None


async def seed_reference_data(session: AsyncSession, settings: Settings) -> list[str]:
    """Instruments and rates, what every environment (tests included) needs; returns the categories loaded."""
    loaded = []
    if await _is_empty(session, Instrument):
        rows = [{"code": code, "name": code.title()} for code in settings.instruments]
        await session.execute(insert(Instrument).values(rows))
        loaded.append("instruments")
    if await _is_empty(session, LessonRate):
        # Only instruments the school still has: the office may have deleted one the settings still list.
        instruments = set(await session.scalars(select(col(Instrument.code))))
        rates = []
        for instrument in (code for code in settings.instruments if code in instruments):
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
        if rates:
            await session.execute(insert(LessonRate).values(rates))
            loaded.append("lesson rates")
    return loaded


async def seed_calendar(session: AsyncSession, settings: Settings, today: date) -> list[str]:
    """The academic calendar, unless the school already has one; returns the categories loaded."""
    if not await _is_empty(session, AcademicYear):
        return []
    if settings.reference_data_file is not None:
        years = read_calendar_file(settings.reference_data_file)
    else:
        years = [default_calendar(academic_year_start(today))]
    for given in years:
        year = AcademicYear(name=given.name, start_date=given.start_date, end_date=given.end_date)
        session.add(year)
        await session.flush()
        session.add_all(Semester(academic_year_id=year.id, **term.model_dump()) for term in given.semesters)
        session.add_all(Closure(academic_year_id=year.id, **closure.model_dump()) for closure in given.closures)
    await session.flush()
    return ["academic calendar"] if years else []


async def load_reference_data(session: AsyncSession, settings: Settings, today: date) -> list[str]:
    await lock_keys(session, REFERENCE_DATA_LOCK)  # two deploys at once: the second finds the rows
    return [*await seed_reference_data(session, settings), *await seed_calendar(session, settings, today)]


async def main() -> None:
    settings = Settings()
    engine = create_engine(settings)
    try:
        async with transaction(create_session_factory(engine)) as session:
            loaded = await load_reference_data(session, settings, datetime.now(settings.timezone).date())
    finally:
        await engine.dispose()
    print(f"reference data: loaded {', '.join(loaded)}" if loaded else "reference data: already present, unchanged")


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except ReferenceDataError as error:
        raise SystemExit(f"reference data: {error}") from None
