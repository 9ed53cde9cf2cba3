"""Demo data for Cedar Heights Music Academy, for development only: ``python -m scripts.seed_demo``.

The reference data (``scripts.reference_data``), an admin and three teachers (one teaches two instruments) with
weekly availability. Running it again changes nothing, even after the school was edited: a person whose user or
teacher row exists (by email) is skipped, and once the demo people were added (the ``demo.seeded`` system
setting) none is added again, so a deleted demo teacher stays deleted. Refused in production.
"""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.db import create_engine, create_session_factory, lock_keys, transaction
from core.passwords import hash_password
from core.settings import Settings
from models import Role, SystemSetting, Teacher, TeacherAvailability, User
from scripts.reference_data import (
    REFERENCE_DATA_LOCK,
    academic_year_start,
    seed_calendar,
    seed_reference_data,
)

__all__ = [
    "DEMO_TEACHERS",
    "DemoSeedRefused",
    "academic_year_start",
    "availability_rows",
    "seed_demo",
    "seed_reference_data",
    "teacher_row",
]

DEMO_SEEDED_KEY = "demo.seeded"


class DemoSeedRefused(RuntimeError):
    pass


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
DEMO_TEACHER_PASSWORD = "cedar-teacher-demo"  # noqa: S105 (the demo school only; refused in production)


async def seed_demo(session: AsyncSession, settings: Settings, today: date) -> None:
    if settings.environment == "production":
        raise DemoSeedRefused("the demo seed never runs in production; use python -m scripts.create_admin")
    await lock_keys(session, REFERENCE_DATA_LOCK)
    await seed_reference_data(session, settings)
    await seed_calendar(session, settings, today)
    if await session.get(SystemSetting, DEMO_SEEDED_KEY) is None:
        await _seed_demo_people(session, settings)
        session.add(
            SystemSetting(
                key=DEMO_SEEDED_KEY,
                value={"at": datetime.now(UTC).isoformat()},
                description="The demo seed added its people; it adds none again (delete to add the missing ones).",
            )
        )


async def _seed_demo_people(session: AsyncSession, settings: Settings) -> None:
    admin_email = settings.demo_admin_email.lower()
    if await _email_taken(session, admin_email):
        print(f"demo admin skipped: {admin_email} exists")
    else:
        session.add(User(email=admin_email, role=Role.admin, password_hash=hash_password(settings.demo_admin_password)))

    for demo in DEMO_TEACHERS:
        if await _email_taken(session, demo.email):
            print(f"demo teacher skipped: {demo.email} exists")
            continue
        user = User(email=demo.email, role=Role.teacher, password_hash=hash_password(DEMO_TEACHER_PASSWORD))
        teacher = teacher_row(user.id, demo.first_name, demo.last_name, demo.email, demo.instruments, demo.capacity)
        teacher.bio = demo.bio
        session.add_all([user, teacher])
        await session.flush()
        session.add_all(availability_rows(teacher.id, demo.availability))


def teacher_row(
    user_id: uuid.UUID,
    first_name: str,
    last_name: str,
    email: str,
    instruments: Iterable[str],
    capacity: int,
) -> Teacher:
    """A teacher as the school shows them ("Maya L."), linked to their login."""
    return Teacher(
        user_id=user_id,
        first_name=first_name,
        last_name=last_name,
        display_name=f"{first_name} {last_name[0]}.",
        email=email.lower(),
        instruments=list(instruments),
        capacity=capacity,
    )


def availability_rows(teacher_id: uuid.UUID, windows: Iterable[tuple[int, time, time]]) -> list[TeacherAvailability]:
    """The teacher's weekly windows, (weekday 0=Monday, start, end) in the school's local time."""
    return [TeacherAvailability(teacher_id=teacher_id, weekday=d, start_time=s, end_time=e) for d, s, e in windows]


async def _email_taken(session: AsyncSession, email: str) -> bool:
    """A user row (a deleted teacher leaves its user) or a teacher row already holds the address."""
    users = select(col(User.id)).where(col(User.email) == email)
    teachers = select(col(Teacher.id)).where(col(Teacher.email) == email)
    return await session.scalar(select(or_(users.exists(), teachers.exists()))) is True


async def main() -> int:
    settings = Settings()
    if settings.environment == "production":
        print("seed-demo: refused in production (demo accounts have published passwords)", file=sys.stderr)
        return 2
    engine = create_engine(settings)
    try:
        async with transaction(create_session_factory(engine)) as session:
            await seed_demo(session, settings, datetime.now(settings.timezone).date())
    finally:
        await engine.dispose()
    print(f"demo data ready (admin {settings.demo_admin_email})")
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
