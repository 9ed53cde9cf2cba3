"""The office's page for closures after booking and teacher changes (``/office/teacher-changes``): close the school
over booked days (cancel or move their lessons), give a teacher's lessons to a substitute (and undo it), transfer
a student to another teacher. Each form calls the service its JSON twin calls (``api/services/calendar.py``,
``api/services/teacher_changes.py``), with the same checks, 409s and audit rows."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import CedarError
from api.pages import office
from api.pages.web import NAV, NOTICES, context_of, page_roles, page_router, redirect, render, sentence
from api.pagination import PageParams, SortOrder
from api.principal import Principal
from api.repositories import teacher_changes as repository
from api.schemas.calendar import ClosureCreate
from api.schemas.teacher_changes import SubstitutionCreate, TransferCreate
from api.services import calendar as calendar_service
from api.services import enrollments as enrollment_service
from api.services import teacher_changes as service
from core.settings import Settings
from domain.enrollment_rules import EnrollmentState
from models import AcademicYear, Enrollment, Role

router = page_router()
AdminUser = Annotated[Principal, Depends(page_roles(Role.admin))]

PATH = "/office/teacher-changes"
# After the office's own pages in its navigation (office.py sets them; importing it here runs it first).
NAV[Role.admin] = [*office.NAV[Role.admin], (PATH, "Closures and teacher changes")]
LIST_LIMIT = 200
NOTICES.update(
    {
        "closure_added": "Closure added: its booked lessons are being handled; each family and teacher is told once.",
        "substituted": "Substitute set: the family and both teachers are told.",
        "substitution_undone": "Substitution undone: the lessons are back with their teacher.",
        "transferred": "Transferred: the lessons ahead are with the new teacher; everyone concerned is told.",
    }
)


def _problem(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
    message = str(first.get("msg", "invalid value")).removeprefix("Value error, ")
    return sentence(f"{where}: {message}" if where else message)


def _refusal(error: CedarError) -> str:
    details = "; ".join(f"{key}: {value}" for key, value in (error.fields or {}).items())
    return sentence(error.detail + (f" ({details})" if details else ""))


async def _page(
    request: Request,
    user: Principal,
    session: AsyncSession,
    settings: Settings,
    problem: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    years = (await session.scalars(select(AcademicYear).order_by(col(AcademicYear.start_date).desc()))).all()
    teachers = await repository.active_teachers(session)
    names = {teacher.id: teacher.display_name for teacher in teachers}
    order = SortOrder((col(Enrollment.created_at).asc(), col(Enrollment.id).asc()))
    active, _ = await enrollment_service.listed(
        session, user, PageParams(LIST_LIMIT, 0), order, [EnrollmentState.ACTIVE.value]
    )
    today = datetime.now(settings.timezone).date()
    return await render(
        request,
        "office_teacher_changes.html",
        status,
        title="Closures and teacher changes",
        problem=problem,
        years=[{"id": year.id, "name": year.name} for year in years],
        teachers=[{"id": teacher.id, "name": teacher.display_name} for teacher in teachers],
        enrollments=[
            {
                "id": item.enrollment.id,
                "label": f"{item.student_first_name} · {item.enrollment.instrument} · "
                f"{item.teacher_display_name or 'no teacher'}",
            }
            for item in active
        ],
        substitutions=[
            {
                "id": row.id,
                "regular_id": row.regular_teacher_id,
                "regular": names.get(row.regular_teacher_id, "a former teacher"),
                "substitute": names.get(row.substitute_teacher_id, "a former teacher"),
                "days": str(row.from_date) if row.from_date == row.to_date else f"{row.from_date} to {row.to_date}",
            }
            for row in await repository.open_substitutions(session, today, LIST_LIMIT)
        ],
        today=str(today),
    )


@router.get(PATH)
async def teacher_changes_page(
    request: Request, user: AdminUser, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    return await _page(request, user, session, settings)


async def _change(request: Request, change: Callable[[AsyncSession], Awaitable[Any]]) -> None:
    """Makes the change in a transaction of its own: a refusal rolls back all of it, and the page that explains
    it is read with the request's session."""
    async with context_of(request).sessions() as session, session.begin():
        await change(session)


async def _refused(
    request: Request, user: Principal, session: AsyncSession, settings: Settings, error: Exception
) -> HTMLResponse:
    if isinstance(error, ValidationError):
        return await _page(request, user, session, settings, _problem(error), 422)
    assert isinstance(error, CedarError)
    if error.status_code not in (404, 409, 422):
        raise error
    return await _page(request, user, session, settings, _refusal(error), error.status_code)


async def _submit(
    request: Request,
    user: Principal,
    session: AsyncSession,
    settings: Settings,
    work: Callable[[], Awaitable[None]],
    *,
    unchosen: str,
    notice: str,
) -> Response:
    """Runs a form's change: a bad field or a refusal shows the page with why (nothing changed), a missing choice
    says which, success goes back to the page with ``notice``."""
    try:
        await work()
    except (ValidationError, CedarError) as error:
        return await _refused(request, user, session, settings, error)
    except ValueError:  # a choice that is not an id: nothing was chosen
        return await _page(request, user, session, settings, unchosen, 422)
    return redirect(f"{PATH}?notice={notice}")


Field = Annotated[str, Form(max_length=200)]


def _optional(value: str) -> str | None:
    return value.strip() or None


@router.post(PATH + "/closure")
async def add_closure(
    request: Request,
    user: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    academic_year_id: Field = "",
    start_date: Field = "",
    end_date: Field = "",
    reason: Field = "",
    lesson_action: Field = "cancel",
) -> Response:
    async def work() -> None:
        year_id = uuid.UUID(academic_year_id)
        body = ClosureCreate.model_validate(
            {"start_date": start_date, "end_date": end_date, "reason": reason, "lesson_action": lesson_action}
        )

        async def close(change: AsyncSession) -> None:
            closure = await calendar_service.create_closure(change, user, year_id, body)
            await calendar_service.handle_booked_lessons(change, temporal, settings, closure)

        await _change(request, close)

    return await _submit(
        request, user, session, settings, work, unchosen="Choose an academic year.", notice="closure_added"
    )


@router.post(PATH + "/substitution")
async def add_substitution(
    request: Request,
    user: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    teacher_id: Field = "",
    substitute_teacher_id: Field = "",
    from_date: Field = "",
    to_date: Field = "",
) -> Response:
    values: dict[str, Any] = {
        "substitute_teacher_id": substitute_teacher_id,
        "from_date": _optional(from_date),
        "to_date": _optional(to_date),
    }

    async def work() -> None:
        regular_id = uuid.UUID(teacher_id)
        body = SubstitutionCreate.model_validate(values)
        await _change(request, lambda change: service.substitute(change, temporal, settings, user, regular_id, body))

    return await _submit(
        request, user, session, settings, work, unchosen="Choose the regular teacher.", notice="substituted"
    )


@router.post(PATH + "/substitutions/{substitution_id}/undo")
async def undo_substitution(
    request: Request,
    substitution_id: uuid.UUID,
    user: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    teacher_id: Field = "",
) -> Response:
    async def work() -> None:
        regular_id = uuid.UUID(teacher_id)
        await _change(
            request,
            lambda change: service.undo_substitution(change, temporal, settings, user, regular_id, substitution_id),
        )

    return await _submit(
        request,
        user,
        session,
        settings,
        work,
        unchosen="That substitution is not known.",
        notice="substitution_undone",
    )


@router.post(PATH + "/transfer")
async def transfer(
    request: Request,
    user: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    enrollment_id: Field = "",
    teacher_id: Field = "",
    from_date: Field = "",
) -> Response:
    async def work() -> None:
        enrollment = uuid.UUID(enrollment_id)
        body = TransferCreate.model_validate({"teacher_id": teacher_id, "from_date": from_date})
        await _change(request, lambda change: service.transfer(change, temporal, settings, user, enrollment, body))

    return await _submit(
        request, user, session, settings, work, unchosen="Choose the student's enrollment.", notice="transferred"
    )
