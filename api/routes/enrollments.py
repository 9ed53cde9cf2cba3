"""``/api/v1/enrollments``: a thin door to the enrollment workflow (validate, start or signal, query).

``api/services/enrollments.py`` writes the row, starts the workflow (or removes the row again when it cannot
start) and sends the workflow its updates. Reading an enrollment asks the running workflow; a finished one answers
from the database.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Header, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import ContextDep, SessionDep, SettingsDep, TemporalDep
from api.limits import limit_public_enrollment
from api.pagination import Page, PageDep, SortOrder, page_of, sorting
from api.principal import AdminPrincipal, BearerCredentials, Principal, require_roles, resolve_principal
from api.routing import IndexedRouter
from api.schemas.enrollment import (
    AssignTeacherIn,
    CancelIn,
    DemoOutcomeIn,
    EnrollmentAccepted,
    EnrollmentCreate,
    EnrollmentStatusOut,
    EnrollmentSummaryOut,
    FamilyConfirmationIn,
    StepOut,
)
from api.services import enrollments as service
from core.contracts.enrollment import Accepted
from core.settings import Settings
from domain.enrollment_rules import EnrollmentState
from domain.local_time import format_local
from models import Enrollment, Role

router = IndexedRouter(prefix="/api/v1/enrollments", tags=["enrollments"])

TeacherOrAdmin = Annotated[Principal, Depends(require_roles(Role.admin, Role.teacher))]
EnrollmentSort = Annotated[
    SortOrder,
    Depends(sorting({"created_at": Enrollment.created_at, "updated_at": Enrollment.updated_at}, "-created_at")),
]
StateFilter = Annotated[
    list[EnrollmentState] | None, Query(description="only these states (repeat the parameter for several)")
]
ParentOrAdmin = Annotated[Principal, Depends(require_roles(Role.admin, Role.parent))]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)]


def status_url(settings: Settings, enrollment_id: uuid.UUID) -> str:
    return f"{settings.public_base_url}/api/v1/enrollments/{enrollment_id}"


@router.post(
    "",
    dependencies=[Depends(limit_public_enrollment)],
    status_code=status.HTTP_202_ACCEPTED,
    response_model=EnrollmentAccepted,
    summary="Enroll a student (public): starts the enrollment workflow",
)
async def create_enrollment(
    body: EnrollmentCreate,
    request: Request,
    context: ContextDep,
    temporal: TemporalDep,
    response: Response,
    credentials: BearerCredentials,
    idempotency_key: IdempotencyKey = None,
) -> EnrollmentAccepted:
    """Public. An address that already has a family (or any login) changes nothing of that family until the
    address's owner confirms by the emailed link; a signed-in parent enrolls a sibling directly."""
    settings = context.settings

    async def caller(session: AsyncSession) -> Principal | None:
        # A bad token is a 401, never a silent stranger.
        return await resolve_principal(request, session, settings, credentials) if credentials is not None else None

    enrollment = await service.create(context.sessions, temporal, settings, body, idempotency_key, caller)
    response.headers["Location"] = status_url(settings, enrollment.id)
    return EnrollmentAccepted(
        enrollment_id=enrollment.id, state=enrollment.state, status_url=status_url(settings, enrollment.id)
    )


@router.get(
    "",
    response_model=Page[EnrollmentSummaryOut],
    summary="List enrollments (staff): the office every one, a teacher their own; filter by state",
)
async def list_enrollments(
    session: SessionDep, principal: TeacherOrAdmin, page: PageDep, order: EnrollmentSort, state: StateFilter = None
) -> dict[str, Any]:
    rows, total = await service.page(session, principal, page, order, [s.value for s in state or []])
    return page_of(rows, total, page)


@router.get("/{enrollment_id}", response_model=EnrollmentStatusOut, summary="An enrollment's progress (by its id)")
async def get_enrollment(
    enrollment_id: uuid.UUID, session: SessionDep, settings: SettingsDep, context: ContextDep
) -> EnrollmentStatusOut:
    found = await service.progress(session, context.temporal, settings, enrollment_id)
    view, enrollment = found.view, found.enrollment
    demo_at = view.demo_starts_at.astimezone(settings.timezone) if view.demo_starts_at else None
    return EnrollmentStatusOut(
        enrollment_id=enrollment.id,
        state=view.state,
        steps=[StepOut(state=s.state, at=s.at) for s in view.steps],
        instrument=enrollment.instrument,
        lesson_minutes=enrollment.lesson_minutes,
        teacher_display_name=found.teacher.display_name if found.teacher else None,
        demo_lesson_at=demo_at,
        demo_lesson_local=format_local(demo_at, settings.timezone) if demo_at else None,
        failure_reason=view.failure_reason,
    )


@router.post(
    "/{enrollment_id}/demo-outcome",
    response_model=Accepted,
    summary="Report the demo lesson's outcome (the assigned teacher or an admin)",
)
async def report_demo_outcome(
    enrollment_id: uuid.UUID,
    body: DemoOutcomeIn,
    session: SessionDep,
    principal: TeacherOrAdmin,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> Accepted:
    return await service.report_demo_outcome(session, temporal, settings, principal, enrollment_id, body.outcome)


@router.post(
    "/{enrollment_id}/cancel", response_model=Accepted, summary="Cancel an enrollment (its family or an admin)"
)
async def cancel_enrollment(
    enrollment_id: uuid.UUID,
    session: SessionDep,
    principal: ParentOrAdmin,
    temporal: TemporalDep,
    settings: SettingsDep,
    body: CancelIn | None = None,
) -> Accepted:
    reason = body.reason if body else None
    return await service.cancel(session, temporal, settings, principal, enrollment_id, reason)


@router.post(
    "/{enrollment_id}/assign-teacher",
    response_model=Accepted,
    summary="Assign a waitlisted enrollment's teacher (admin)",
)
async def assign_teacher(
    enrollment_id: uuid.UUID,
    body: AssignTeacherIn,
    session: SessionDep,
    principal: AdminPrincipal,
    temporal: TemporalDep,
    settings: SettingsDep,
) -> Accepted:
    return await service.assign_teacher(session, temporal, settings, principal, enrollment_id, body.teacher_id)


@router.post(
    "/{enrollment_id}/family-confirmation",
    response_model=Accepted,
    summary="Confirm or decline joining an existing family (public, with the emailed link's token)",
)
async def confirm_family(enrollment_id: uuid.UUID, body: FamilyConfirmationIn, context: ContextDep) -> Accepted:
    return await service.answer_family_confirmation(context, enrollment_id, body.token, body.decision)
