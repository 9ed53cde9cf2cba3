"""The school calendar: academic years, semesters and closures, each change checked against its year and
audited."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

from api.principal import Principal
from api.repositories import calendar as repository
from api.repositories import makeups
from api.repositories.audit import audit_write, snapshot
from api.repositories.base import add_or_conflict, apply_changes, delete_now, flush_or_conflict, invalid
from api.schemas.calendar import AcademicYearCreate, ClosureCreate, SemesterCreate
from api.temporal_calls import bounded
from core.contracts.closures import CLOSURE_WORKFLOW, ClosureInput, CreditPolicy
from core.settings import Settings
from core.temporal import closure_workflow_id
from models import AcademicYear, Closure, Semester


def _check_order(row: Any, *, same_day_allowed: bool) -> None:
    if row.end_date < row.start_date or (row.end_date == row.start_date and not same_day_allowed):
        raise invalid("end_date", "end_date must be after start_date")


def _check_inside(year: AcademicYear, start: date, end: date) -> None:
    if start < year.start_date or end > year.end_date:
        raise invalid("start_date", f"must lie within the academic year {year.start_date} to {year.end_date}")


async def _create(session: AsyncSession, principal: Principal, row: Any, entity: str, what: str) -> None:
    await add_or_conflict(session, row, f"{what} already exists")
    await audit_write(session, principal, "create", entity, row.id, after=snapshot(row))


async def _update(
    session: AsyncSession,
    principal: Principal,
    row: Any,
    changes: dict[str, Any],
    entity: str,
    year: AcademicYear | None,
) -> None:
    before = snapshot(row)
    apply_changes(row, changes)
    _check_order(row, same_day_allowed=isinstance(row, Closure))
    if year is not None:
        _check_inside(year, row.start_date, row.end_date)
    await flush_or_conflict(session, f"another {entity.replace('_', ' ')} has that name")
    await audit_write(session, principal, "update", entity, row.id, before=before, after=snapshot(row))


async def _delete(session: AsyncSession, principal: Principal, row: Any, entity: str) -> None:
    before = snapshot(row)
    await delete_now(session, row)
    await audit_write(session, principal, "delete", entity, row.id, before=before)


async def year_detail(
    session: AsyncSession, year_id: uuid.UUID
) -> tuple[AcademicYear, Sequence[Semester], Sequence[Closure]]:
    """The year with its semesters and closures, each in date order."""
    year = await repository.year(session, year_id)
    return year, await repository.semesters_of(session, year_id), await repository.closures_of(session, year_id)


async def create_year(session: AsyncSession, principal: Principal, body: AcademicYearCreate) -> AcademicYear:
    year = AcademicYear(**body.model_dump())
    await _create(session, principal, year, "academic_year", f"the academic year {body.name}")
    return year


async def update_year(
    session: AsyncSession, principal: Principal, year_id: uuid.UUID, changes: dict[str, Any]
) -> AcademicYear:
    year = await repository.year(session, year_id)
    await _update(session, principal, year, changes, "academic_year", None)
    return year


async def delete_year(session: AsyncSession, principal: Principal, year_id: uuid.UUID) -> None:
    """The year goes with its semesters and closures."""
    await _delete(session, principal, await repository.year(session, year_id), "academic_year")


async def create_semester(
    session: AsyncSession, principal: Principal, year_id: uuid.UUID, body: SemesterCreate
) -> Semester:
    year = await repository.year(session, year_id)
    _check_inside(year, body.start_date, body.end_date)
    semester = Semester(academic_year_id=year.id, **body.model_dump())
    await _create(session, principal, semester, "semester", f"the semester {body.name}")
    return semester


async def update_semester(
    session: AsyncSession, principal: Principal, semester_id: uuid.UUID, changes: dict[str, Any]
) -> Semester:
    semester = await repository.semester(session, semester_id)
    year = await repository.year(session, semester.academic_year_id)
    await _update(session, principal, semester, changes, "semester", year)
    return semester


async def delete_semester(session: AsyncSession, principal: Principal, semester_id: uuid.UUID) -> None:
    await _delete(session, principal, await repository.semester(session, semester_id), "semester")


async def create_closure(
    session: AsyncSession, principal: Principal, year_id: uuid.UUID, body: ClosureCreate
) -> Closure:
    year = await repository.year(session, year_id)
    _check_inside(year, body.start_date, body.end_date)
    closure = Closure(academic_year_id=year.id, **body.model_dump())
    await _create(session, principal, closure, "closure", "the closure")
    return closure


async def handle_booked_lessons(session: AsyncSession, temporal: Client, settings: Settings, closure: Closure) -> None:
    """Commits the new closure, then starts its workflow for the lessons already booked on its days (cancelled
    with a make-up credit by today's policy, or moved, as ``lesson_action`` says)."""
    policy = await makeups.policy(session, settings)
    request = ClosureInput(
        closure_id=closure.id, lesson_action=closure.lesson_action, policy=CreditPolicy(**policy.__dict__)
    )
    await session.commit()
    async with bounded(settings.temporal_update_timeout, "the closure's workflow"):
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await temporal.start_workflow(
                CLOSURE_WORKFLOW,
                request,
                id=closure_workflow_id(closure.id),
                task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=f"Closure: booked lessons to {closure.lesson_action}",
                rpc_timeout=settings.temporal_update_timeout,
            )


async def update_closure(
    session: AsyncSession, principal: Principal, closure_id: uuid.UUID, changes: dict[str, Any]
) -> Closure:
    closure = await repository.closure(session, closure_id)
    year = await repository.year(session, closure.academic_year_id)
    await _update(session, principal, closure, changes, "closure", year)
    return closure


async def delete_closure(session: AsyncSession, principal: Principal, closure_id: uuid.UUID) -> None:
    await _delete(session, principal, await repository.closure(session, closure_id), "closure")
