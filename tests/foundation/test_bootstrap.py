"""Bootstrapping a school: reference data that never overwrites the office's edits, a demo seed that survives an
edited school and never runs in production, and the first admin made with a set-password link."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlmodel import col

from core.db import SessionFactory, create_engine, create_session_factory, transaction
from core.identity import AuthFailure, BuiltinIdentityProvider
from core.settings import Settings
from models import AcademicYear, Closure, Instrument, LessonRate, Role, SystemSetting, Teacher, TokenPurpose, User
from scripts.create_admin import BootstrapError, create_admin
from scripts.reference_data import ReferenceDataError, load_reference_data
from scripts.seed_demo import DEMO_TEACHERS, DemoSeedRefused, seed_demo
from tests.conftest import REPO_ROOT

TODAY = date(2026, 11, 20)
PRODUCTION_ENV = {
    "CEDAR_ENVIRONMENT": "production",
    "CEDAR_JWT_SECRET": "a-real-secret-of-the-school-" + "x" * 20,
    "CEDAR_STRIPE_API_KEY": "sk_live_cedar",
    "CEDAR_STRIPE_PUBLISHABLE_KEY": "pk_live_cedar",
    "CEDAR_STRIPE_API_BASE": "",
    "CEDAR_STRIPE_WEBHOOK_SECRETS": '["whsec_real"]',
    "CEDAR_PUBLIC_BASE_URL": "https://school.cedar.test",
    "CEDAR_PAYLOAD_KEYS": '{"2026-01": "cHJvZHVjdGlvbi1wYXlsb2FkLWtleS1mb3ItdGVzdHM="}',
    "CEDAR_PAYLOAD_KEY_CURRENT": "2026-01",
}


@pytest.fixture
def plain_settings(db_url: str) -> Settings:
    return Settings(_env_file=None, environment="test", database_url=db_url, db_pool_size=2)  # type: ignore[call-arg]


@pytest.fixture
async def db(plain_settings: Settings) -> AsyncIterator[SessionFactory]:
    engine: AsyncEngine = create_engine(plain_settings)
    yield create_session_factory(engine)
    await engine.dispose()


async def _count(sessions: SessionFactory, model: type, *where: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def _cli(module: str, db_url: str, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CEDAR_") and k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        env={**clean, "CEDAR_DATABASE_URL": db_url, **env},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_reference_data_fills_empty_tables_once_and_never_undoes_the_offices_edits(
    db: SessionFactory, plain_settings: Settings
) -> None:
    async with transaction(db) as session:
        await session.execute(delete(LessonRate))
        await session.execute(delete(Instrument))
        assert await load_reference_data(session, plain_settings, TODAY) == [
            "instruments",
            "lesson rates",
            "academic calendar",
        ]
    rates = await _count(db, LessonRate)
    assert rates == len(plain_settings.instruments) * len(plain_settings.lesson_lengths_minutes)
    async with transaction(db) as session:  # the office edits the school
        await session.execute(delete(LessonRate).where(col(LessonRate.instrument) == "bass"))
        await session.execute(update(Instrument).where(col(Instrument.code) == "piano").values(name="Grand piano"))
        await session.execute(delete(Closure).where(col(Closure.reason) == "Family Day"))
    async with transaction(db) as session:
        assert await load_reference_data(session, plain_settings, TODAY) == []
    assert await _count(db, LessonRate, col(LessonRate.instrument) == "bass") == 0
    assert await _count(db, Instrument, col(Instrument.name) == "Grand piano") == 1
    assert await _count(db, Closure, col(Closure.reason) == "Family Day") == 0
    assert await _count(db, AcademicYear) == 1


async def test_the_calendar_comes_from_the_schools_file(
    db: SessionFactory, plain_settings: Settings, tmp_path: Path
) -> None:
    calendar = {
        "academic_years": [
            {
                "name": "2026-2027",
                "start_date": "2026-08-24",
                "end_date": "2027-08-20",
                "semesters": [{"name": "Autumn", "start_date": "2026-08-31", "end_date": "2026-12-18"}],
                "closures": [{"start_date": "2026-10-12", "end_date": "2026-10-12", "reason": "Thanksgiving"}],
            }
        ]
    }
    path = tmp_path / "calendar.json"
    path.write_text(json.dumps(calendar))
    async with transaction(db) as session:
        assert await load_reference_data(
            session, plain_settings.model_copy(update={"reference_data_file": path}), TODAY
        ) == ["academic calendar"]
    async with db() as session:
        year = await session.scalar(select(AcademicYear))
    assert year is not None
    assert (year.name, year.start_date) == ("2026-2027", date(2026, 8, 24))
    assert await _count(db, Closure) == 1

    path.write_text(json.dumps({"academic_years": [{"name": "2027-2028"}]}))
    async with transaction(db) as session:
        await session.execute(delete(AcademicYear))
        with pytest.raises(ReferenceDataError, match=r"CEDAR_REFERENCE_DATA_FILE: .* not a valid calendar"):
            await load_reference_data(session, plain_settings.model_copy(update={"reference_data_file": path}), TODAY)


async def test_the_demo_seed_survives_a_deleted_demo_teacher(db: SessionFactory, plain_settings: Settings) -> None:
    async with transaction(db) as session:
        await seed_demo(session, plain_settings, TODAY)
    aiko = DEMO_TEACHERS[2].email
    # DELETE /api/v1/teachers/{id} removes the teacher row and leaves its user row.
    async with transaction(db) as session:
        await session.execute(delete(Teacher).where(col(Teacher.email) == aiko))
    async with transaction(db) as session:
        await seed_demo(session, plain_settings, TODAY)
    assert await _count(db, Teacher) == len(DEMO_TEACHERS) - 1

    # A school seeded before the seed kept its marker: the user row alone keeps Aiko out.
    async with transaction(db) as session:
        await session.execute(delete(Teacher).where(col(Teacher.email) == DEMO_TEACHERS[0].email))
        await session.execute(delete(User).where(col(User.email) == DEMO_TEACHERS[0].email))
        await session.execute(delete(SystemSetting))
    async with transaction(db) as session:
        await seed_demo(session, plain_settings, TODAY)
    async with db() as session:
        emails = set(await session.scalars(select(col(Teacher.email))))
    assert emails == {DEMO_TEACHERS[0].email, DEMO_TEACHERS[1].email}
    assert await _count(db, User, col(User.email) == aiko) == 1

    # Once seeded, no demo person comes back.
    async with transaction(db) as session:
        await session.execute(delete(Teacher))
    async with transaction(db) as session:
        await seed_demo(session, plain_settings, TODAY)
    assert await _count(db, Teacher) == 0


async def test_the_demo_seed_is_refused_in_production(
    db: SessionFactory, plain_settings: Settings, db_url: str
) -> None:
    async with transaction(db) as session:
        with pytest.raises(DemoSeedRefused):
            await seed_demo(session, plain_settings.model_copy(update={"environment": "production"}), TODAY)
    result = _cli("scripts.seed_demo", db_url, **PRODUCTION_ENV)
    assert result.returncode == 2, result.stderr
    assert "refused in production" in result.stderr
    assert await _count(db, User) == 0


async def test_the_production_prestart_loads_reference_data_and_no_user(db: SessionFactory, db_url: str) -> None:
    result = _cli("scripts.reference_data", db_url, **PRODUCTION_ENV)
    assert result.returncode == 0, result.stderr
    assert "academic calendar" in result.stdout
    assert await _count(db, User) == 0
    assert "scripts.seed_demo" not in (REPO_ROOT / "deploy" / "prestart.sh").read_text()


async def test_create_admin_twice_makes_one_admin_and_only_the_newest_link_works(
    db: SessionFactory, plain_settings: Settings
) -> None:
    identity = BuiltinIdentityProvider(plain_settings)
    async with transaction(db) as session:
        first = await create_admin(session, identity, " Office@CedarHeights.example ")
    async with transaction(db) as session:
        second = await create_admin(session, identity, "office@cedarheights.example")
    assert (first.created, second.created) == (True, False)
    assert first.link.startswith(f"{plain_settings.public_base_url}/set-password?token=")
    assert await _count(db, User, col(User.email) == "office@cedarheights.example", col(User.role) == Role.admin) == 1

    async with transaction(db) as session:
        with pytest.raises(AuthFailure):
            await identity.set_password(session, first.link.split("token=")[1], TokenPurpose.set_password, "x" * 12)
    async with transaction(db) as session:
        await identity.set_password(session, second.link.split("token=")[1], TokenPurpose.set_password, "y" * 12)
    async with transaction(db) as session:
        signed_in = await identity.sign_in(session, "office@cedarheights.example", "y" * 12)
    assert signed_in.role == Role.admin


async def test_create_admin_refuses_an_address_a_parent_holds(db: SessionFactory, plain_settings: Settings) -> None:
    async with transaction(db) as session:
        session.add(User(email="parent@cedar.test", role=Role.parent))
    async with transaction(db) as session:
        with pytest.raises(BootstrapError, match="already has a parent account"):
            await create_admin(session, BuiltinIdentityProvider(plain_settings), "parent@cedar.test")
    assert await _count(db, User, col(User.role) == Role.admin) == 0


async def test_the_create_admin_command_takes_the_email_from_the_environment(db: SessionFactory, db_url: str) -> None:
    made = _cli("scripts.create_admin", db_url, **PRODUCTION_ENV, CEDAR_BOOTSTRAP_ADMIN_EMAIL="head@school.test")
    assert made.returncode == 0, made.stderr
    assert "admin head@school.test created" in made.stdout
    assert "https://school.cedar.test/set-password?token=" in made.stdout
    asked = _cli("scripts.create_admin", db_url, **PRODUCTION_ENV)
    assert asked.returncode == 2
    assert "pass --email or set CEDAR_BOOTSTRAP_ADMIN_EMAIL" in asked.stderr
    assert await _count(db, User) == 1
