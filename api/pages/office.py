"""The office's pages (admins): ``/office/enrollments`` (every enrollment by state: the waitlist, those waiting for
a demo outcome or a family's confirmation, …) and ``/office/arrears`` (families in arrears, each with pause,
resume, retry now and forgive).

Each calls the service its JSON twin calls: the list is ``services.enrollments.page`` behind
``GET /api/v1/enrollments`` (the same scope and audited reads); the four actions are ``services.dunning.act``
behind ``POST /api/v1/dunning/families/{id}/{action}`` (the workflow's signal, the same audit row, the same 409s).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal, get_args

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio.client import Client

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import CedarError
from api.middleware import request_id
from api.pages.web import HOME, NAV, NOTICES, page_roles, page_router, redirect, render, sentence
from api.pagination import PageParams, SortOrder
from api.principal import Principal
from api.routes.dunning import ActionIn
from api.services import dunning as dunning_service
from api.services import enrollments as enrollment_service
from core.contracts.dunning import DunningSnapshot
from core.settings import Settings
from domain.enrollment_rules import EnrollmentState
from domain.local_time import format_local
from domain.money import format_money
from models import Enrollment, Role

router = page_router()
AdminUser = Annotated[Principal, Depends(page_roles(Role.admin))]

ENROLLMENTS = "/office/enrollments"
ARREARS = "/office/arrears"
NAV[Role.admin] = [(ENROLLMENTS, "Enrollments"), (ARREARS, "Families in arrears")]
HOME[Role.admin] = ENROLLMENTS
PAGE_SIZE = 50

_S = EnrollmentState
# The office's views of the enrollments: (key, tab label, heading, states).
VIEWS: list[tuple[str, str, str, tuple[EnrollmentState, ...]]] = [
    ("waitlist", "Waitlist", "The waitlist: no teacher has a slot yet", (_S.WAITLISTED,)),
    (
        "outcome",
        "Demo outcome",
        "Waiting for a demo's outcome",
        (_S.AWAITING_OUTCOME, _S.DEMO_SCHEDULED),
    ),
    ("confirmation", "Family to confirm", "Awaiting a family's confirmation", (_S.AWAITING_CONFIRMATION,)),
    (
        "starting",
        "In progress",
        "Being set up",
        (_S.RECEIVED, _S.VALIDATED, _S.ACCOUNT_CREATED, _S.TEACHER_ASSIGNED),
    ),
    ("active", "Active", "Active", (_S.ACTIVE,)),
    ("closed", "Closed", "Withdrawn, cancelled or failed", (_S.WITHDRAWN, _S.CANCELLED, _S.FAILED)),
    ("all", "All", "Every enrollment", ()),
]
VIEW_KEYS = {key for key, *_ in VIEWS}
STATE_LABELS = {state.value: state.value.replace("_", " ") for state in EnrollmentState}

Action = Literal["pause", "resume", "retry-now", "forgive"]
ACTIONS: dict[str, tuple[str, str]] = {
    "pause": ("Pause", "Stops the family's dunning clock: no retry, warning or suspension until resumed."),
    "resume": ("Resume", "Starts the clock again where it stopped."),
    "retry-now": ("Retry now", "Has billing charge every unpaid invoice now."),
    "forgive": ("Forgive", "Writes the unpaid invoices off: the family is clear again."),
}
NOTICES.update(
    {
        "dunning_pause": "Paused: the family's dunning clock is stopped.",
        "dunning_resume": "Resumed: the family's dunning clock runs again.",
        "dunning_retry_now": "Retry sent: billing charges the unpaid invoices now (reload in a moment).",
        "dunning_forgive": "Forgiven: the unpaid invoices are being written off; the family is clear.",
    }
)
DUNNING_LABELS = {
    "clear": "payment failed",
    "warning": "warning",
    "suspended": "lessons on hold",
    "cancelled": "cancelled",
}


def _local(settings: Settings, at: Any) -> str:
    return format_local(at, settings.timezone) if at else ""


# --- enrollments ---


@router.get(ENROLLMENTS)
async def enrollments_page(
    request: Request,
    user: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    view: Annotated[str, Query(max_length=20)] = "waitlist",
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> HTMLResponse:
    if view not in VIEW_KEYS:
        view = "waitlist"
    _, _, heading, states = next(item for item in VIEWS if item[0] == view)
    # The waitlist oldest first (first come, first served); everything else newest first, as the API.
    column = col(Enrollment.created_at)
    order = SortOrder((column.asc() if view == "waitlist" else column.desc(), col(Enrollment.id).asc()))
    listed, total = await enrollment_service.listed(
        session, user, PageParams(PAGE_SIZE, offset), order, [state.value for state in states]
    )
    rows = [
        {
            "id": item.enrollment.id,
            "student": item.student_first_name,
            "instrument": item.enrollment.instrument,
            "minutes": item.enrollment.lesson_minutes,
            "state": STATE_LABELS.get(item.enrollment.state, item.enrollment.state),
            "teacher": item.teacher_display_name or "—",
            "demo": _local(settings, item.demo_starts_at) or "—",
            "since": _local(settings, item.enrollment.updated_at),
            "received": _local(settings, item.enrollment.created_at),
            "reason": item.enrollment.failure_reason or "",
        }
        for item in listed
    ]
    return await render(
        request,
        "office_enrollments.html",
        title="Enrollments",
        views=[(key, label) for key, label, *_ in VIEWS],
        view=view,
        heading=heading,
        rows=rows,
        total=total,
        first=offset + 1,
        last=offset + len(rows),
        previous=max(offset - PAGE_SIZE, 0) if offset > 0 else None,
        next=offset + PAGE_SIZE if offset + PAGE_SIZE < total else None,
    )


# --- families in arrears ---


@router.get(ARREARS)
async def arrears_page(request: Request, user: AdminUser, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    families = await dunning_service.families_in_arrears(session, user)
    return await render(
        request,
        "office_arrears.html",
        title="Families in arrears",
        families=[
            {
                "id": family.parent_id,
                "name": family.parent_name,
                "state": DUNNING_LABELS.get(family.state, family.state),
                "paused": family.paused,
                "invoices": family.past_due_invoices,
                "owed": format_money(family.owed_minor, settings.currency),
            }
            for family in families
        ],
    )


async def _family_page(
    request: Request,
    user: Principal,
    session: AsyncSession,
    settings: Settings,
    temporal: Client,
    parent_id: uuid.UUID,
    problem: str | None = None,
    status: int = 200,
    reason: str = "",
) -> HTMLResponse:
    name = await dunning_service.family_name(session, user, parent_id)
    found = await dunning_service.family_state(session, temporal, settings, parent_id)
    snapshot = found if isinstance(found, DunningSnapshot) else None
    state, paused = (found.state, found.paused) if isinstance(found, DunningSnapshot) else found
    invoices = snapshot.invoices if snapshot else []
    available = {
        "pause": snapshot is not None and not snapshot.paused,
        "resume": snapshot is not None and snapshot.paused,
        "retry-now": bool(invoices),
        "forgive": bool(invoices),
    }
    return await render(
        request,
        "office_family.html",
        status,
        title=f"{name}: dunning",
        parent_id=parent_id,
        active=snapshot is not None,
        state=DUNNING_LABELS.get(state, state) if invoices or state != "clear" else "clear",
        paused=bool(paused),
        lessons_suspended=bool(snapshot and snapshot.lessons_suspended),
        next_action=_local(settings, snapshot.next_action_at) if snapshot else "",
        invoices=[
            {
                "ref": invoice.stripe_invoice_id,
                "amount": format_money(invoice.amount_due_minor, settings.currency),
                "failed": _local(settings, invoice.first_failed_at),
                "attempts": invoice.attempts,
                "hard": invoice.hard_decline,
                "confirm": invoice.needs_confirmation,
            }
            for invoice in invoices
        ],
        timeline=[
            {"at": _local(settings, event.at), "kind": event.kind.replace("_", " "), "detail": event.detail}
            for event in reversed(snapshot.timeline if snapshot else [])
        ],
        actions=[(action, label, help_text, available[action]) for action, (label, help_text) in ACTIONS.items()],
        problem=problem,
        reason=reason,
    )


@router.get(ARREARS + "/{parent_id}")
async def family_page(
    request: Request,
    parent_id: uuid.UUID,
    user: AdminUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
) -> HTMLResponse:
    return await _family_page(request, user, session, settings, temporal, parent_id)


async def _act(
    action: Action,
    request: Request,
    parent_id: uuid.UUID,
    user: Principal,
    session: AsyncSession,
    settings: Settings,
    temporal: Client,
    reason: str,
) -> Response:
    reason = reason.strip()
    try:
        checked = ActionIn(reason=reason)
    except ValidationError:
        problem = "Give a reason of 3 to 500 characters: it is kept in the audit log."
        return await _family_page(request, user, session, settings, temporal, parent_id, problem, 422, reason)
    try:
        await dunning_service.act(
            session, temporal, settings, user, action, parent_id, checked.reason, request_id(request)
        )
    except CedarError as refused:
        if refused.status_code != 409:
            raise
        return await _family_page(
            request, user, session, settings, temporal, parent_id, sentence(refused.detail), 409, reason
        )
    return redirect(f"{ARREARS}/{parent_id}?notice=dunning_{action.replace('-', '_')}")


def _endpoint(action: Action) -> Callable[..., Awaitable[Response]]:
    async def endpoint(
        request: Request,
        parent_id: uuid.UUID,
        user: AdminUser,
        session: SessionDep,
        settings: SettingsDep,
        temporal: TemporalDep,
        reason: Annotated[str, Form(max_length=2000)] = "",
    ) -> Response:
        return await _act(action, request, parent_id, user, session, settings, temporal, reason)

    return endpoint


# One route per action, as the JSON API's (``api/routes/dunning.py``).
for _action in get_args(Action):
    router.add_api_route(
        f"{ARREARS}/{{parent_id}}/{_action}", _endpoint(_action), methods=["POST"], name=f"office_{_action}"
    )
