"""A teacher's pages: ``/teacher`` (today's and this week's lessons, in the school's timezone, with attendance
buttons on this week's lessons that have started) and ``/teacher/demos`` (their demo lessons, with the outcome
buttons).

Each calls the service its JSON twin calls, with the signed-in teacher as principal, so another teacher's lesson
or enrollment is invisible here too: the outcome's buttons go through ``services.enrollments.report_demo_outcome``,
as ``POST /api/v1/enrollments/{id}/demo-outcome`` does (the workflow's update, and a row in the audit log).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from fastapi import Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.deps import SessionDep, SettingsDep, TemporalDep
from api.errors import CedarError
from api.pages.web import HOME, NAV, NOTICES, page_roles, page_router, redirect, render, sentence
from api.pagination import PageParams, SortOrder
from api.principal import Principal
from api.services import attendance as attendance_service
from api.services import calendar_feeds as feed_service
from api.services import enrollments as enrollment_service
from api.services import lessons as lesson_service
from core.contracts.enrollment import DemoOutcome
from core.page_links import TEACHER_DEMOS_PATH as TEACHER_DEMOS
from core.page_links import TEACHER_LESSONS_PATH as TEACHER_LESSONS
from core.settings import Settings
from domain.attendance import Attendance, refusal
from domain.enrollment_rules import EnrollmentState
from domain.local_time import format_local
from models import Enrollment, Role

router = page_router()
TeacherUser = Annotated[Principal, Depends(page_roles(Role.teacher))]

NAV[Role.teacher] = [(TEACHER_LESSONS, "Lessons"), (TEACHER_DEMOS, "Demos")]
HOME[Role.teacher] = TEACHER_LESSONS
OUTCOME_LABELS = {
    DemoOutcome.continue_: "Continue",
    DemoOutcome.withdraw: "Withdraw",
    DemoOutcome.no_show: "No-show",
}
NOTICES.update(
    {
        "outcome_continue": "Recorded: the student continues. Their weekly lessons are being booked.",
        "outcome_withdraw": "Recorded: the family withdraws after the demo.",
        "outcome_no_show": "Recorded: a no-show. Another demo is booked if there is a slot; you will get an email.",
        "teacher_feed_issued": "Your calendar link is ready: copy it into your calendar app (below).",
        "teacher_feed_revoked": "The calendar link is revoked: calendar apps using it stop receiving lessons.",
        "attendance_recorded": "Attendance recorded.",
    }
)
ATTENDANCE_LABELS = {
    Attendance.present: "Present",
    Attendance.late: "Late",
    Attendance.absent: "Absent",
    Attendance.excused: "Excused",
}
KIND_LABELS = {"demo": "Demo", "regular": "Lesson", "makeup": "Make-up"}
STATUS_LABELS = {
    "scheduled": "",
    "completed": "completed",
    "no_show": "no-show",
    "cancelled": "cancelled",
    "suspended": "on hold (billing)",
}
DEMO_STATES = (EnrollmentState.DEMO_SCHEDULED.value, EnrollmentState.AWAITING_OUTCOME.value)
DEMO_LIMIT = 100


def _clock(at: datetime, settings: Settings) -> str:
    local = at.astimezone(settings.timezone)
    return f"{local.hour % 12 or 12}:{local:%M %p}"


def _day_label(day: date) -> str:
    return f"{day:%A} {day.day} {day:%B}"


def _week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _local_midnight(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, time(0), tzinfo=settings.timezone)


async def _lessons_page(
    request: Request,
    user: Principal,
    session: AsyncSession,
    settings: Settings,
    week: date | None,
    problem: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    now = datetime.now(settings.timezone)
    today = now.date()
    monday = _week_start(week or today)
    # Midnight to midnight in the school's zone: a week that crosses a DST change is 167 or 169 hours long.
    lines = await lesson_service.agenda(
        session,
        user,
        _local_midnight(monday, settings),
        _local_midnight(monday + timedelta(days=7), settings),
    )
    this_week = monday == _week_start(today)
    days: dict[date, list[dict[str, Any]]] = {monday + timedelta(days=n): [] for n in range(7)}
    for line in lines:
        lesson = line.lesson
        day = lesson.starts_at.astimezone(settings.timezone).date()
        days.setdefault(day, []).append(
            {
                "time": _clock(lesson.starts_at, settings),
                "end": _clock(lesson.ends_at, settings),
                "student": line.student_first_name,
                "kind": KIND_LABELS.get(lesson.kind, lesson.kind),
                "status": STATUS_LABELS.get(lesson.status, lesson.status),
                "demo_link": lesson.kind == "demo" and lesson.status == "scheduled",
                "id": lesson.id,
                # Attendance buttons on this week's lessons that have started (domain/attendance.py)
                "markable": this_week and refusal(lesson.kind, lesson.status, lesson.starts_at, now) is None,
                "attendance": lesson.attendance or "",
            }
        )
    return await render(
        request,
        "teacher_lessons.html",
        status,
        title="Your lessons",
        problem=problem,
        attendance_choices=list(ATTENDANCE_LABELS.items()),
        week=monday.isoformat(),
        today=days.get(today, []) if this_week else None,
        today_label=_day_label(today),
        days=[(_day_label(day), day == today, items) for day, items in sorted(days.items())],
        week_label=f"Week of {_day_label(monday)} {monday.year}",
        this_week=this_week,
        previous_week=(monday - timedelta(days=7)).isoformat(),
        next_week=(monday + timedelta(days=7)).isoformat(),
        timezone=str(settings.timezone),
        count=len(lines),
        feed=await feed_service.current(session, settings, user, _feed_owner(user)),
    )


def _feed_owner(user: Principal) -> feed_service.Owner:
    assert user.teacher_id is not None  # a teacher's account always has its teacher row
    return feed_service.Owner(teacher_id=user.teacher_id)


@router.post(TEACHER_LESSONS + "/calendar-feed")
async def issue_feed(user: TeacherUser, session: SessionDep, settings: SettingsDep) -> Response:
    """The same service as ``POST /api/v1/teachers/{id}/calendar-feed``: the teacher's link (the current one)."""
    await feed_service.issue(session, settings, user, _feed_owner(user))
    return redirect(f"{TEACHER_LESSONS}?notice=teacher_feed_issued#feed-title")


@router.post(TEACHER_LESSONS + "/calendar-feed/revoke")
async def revoke_feed(user: TeacherUser, session: SessionDep) -> Response:
    """The same service as ``DELETE /api/v1/teachers/{id}/calendar-feed``: the link is a 404 from now on."""
    await feed_service.revoke(session, user, _feed_owner(user))
    return redirect(f"{TEACHER_LESSONS}?notice=teacher_feed_revoked#feed-title")


@router.get(TEACHER_LESSONS)
async def lessons_page(
    request: Request,
    user: TeacherUser,
    session: SessionDep,
    settings: SettingsDep,
    week: Annotated[date | None, Query(description="any day of the week to show")] = None,
) -> HTMLResponse:
    return await _lessons_page(request, user, session, settings, week)


@router.post(TEACHER_LESSONS + "/lessons/{lesson_id}/attendance")
async def mark_attendance(
    request: Request,
    lesson_id: uuid.UUID,
    user: TeacherUser,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    attendance: Annotated[Attendance, Form()],
) -> Response:
    """As ``POST /api/v1/lessons/{id}/attendance``: the same service, so the same rules, credit and audit row."""
    try:
        await attendance_service.mark(session, temporal, settings, user, lesson_id, attendance)
    except CedarError as refused:
        if refused.status_code not in (404, 409):
            raise
        return await _lessons_page(
            request, user, session, settings, None, sentence(refused.detail), refused.status_code
        )
    return redirect(f"{TEACHER_LESSONS}?notice=attendance_recorded")


async def _demos_page(
    request: Request,
    user: Principal,
    session: AsyncSession,
    settings: Settings,
    problem: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    order = SortOrder((col(Enrollment.updated_at).asc(), col(Enrollment.id).asc()))
    listed, _ = await enrollment_service.listed(session, user, PageParams(DEMO_LIMIT, 0), order, DEMO_STATES)
    now = datetime.now(settings.timezone)
    waiting: list[dict[str, Any]] = []
    ahead: list[dict[str, Any]] = []
    for item in sorted(listed, key=lambda item: item.demo_starts_at or now):
        demo = {
            "id": item.enrollment.id,
            "student": item.student_first_name,
            "instrument": item.enrollment.instrument,
            "minutes": item.enrollment.lesson_minutes,
            "when": format_local(item.demo_starts_at, settings.timezone) if item.demo_starts_at else "not booked",
        }
        past = item.demo_starts_at is not None and item.demo_starts_at <= now
        (waiting if item.enrollment.state == EnrollmentState.AWAITING_OUTCOME or past else ahead).append(demo)
    return await render(
        request,
        "teacher_demos.html",
        status,
        title="Your demo lessons",
        waiting=waiting,
        ahead=ahead,
        outcomes=list(OUTCOME_LABELS.items()),
        problem=problem,
    )


@router.get(TEACHER_DEMOS)
async def demos_page(request: Request, user: TeacherUser, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    return await _demos_page(request, user, session, settings)


@router.post(TEACHER_DEMOS + "/{enrollment_id}/outcome")
async def record_outcome(
    request: Request,
    enrollment_id: uuid.UUID,
    user: TeacherUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    outcome: Annotated[DemoOutcome, Form()],
) -> Response:
    try:
        await enrollment_service.report_demo_outcome(session, temporal, settings, user, enrollment_id, outcome)
    except CedarError as refused:
        if refused.status_code not in (404, 409):
            raise
        return await _demos_page(request, user, session, settings, sentence(refused.detail), refused.status_code)
    return redirect(f"{TEACHER_DEMOS}?notice=outcome_{outcome.value}")
