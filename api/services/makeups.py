"""Cancellations' outcomes and make-up credits (rules: ``domain/makeups.py``; docs/lessons.md).

The database decides every race: a credit is claimed by a conditional update in the same transaction that places
the make-up lesson under the teacher's exclusion constraint, so of two requests for one credit or one slot one
wins and the other gets a 409. Only then is the credit's workflow (``makeup-credit-{id}``) told, and it records
the use. The office's extend and void are the workflow's updates; the API returns their answer and audits them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import FailureError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Conflict
from api.principal import Principal
from api.repositories import enrollments, students, teachers
from api.repositories import makeups as repository
from api.repositories.audit import audit_write, snapshot
from api.repositories.base import invalid
from api.repositories.lessons import Slot, place_lesson
from api.schemas.makeups import CreditExtend, CreditGrant, CreditVoid, MakeupBooking
from api.temporal_calls import bounded
from core.contracts.makeup import (
    LESSON_CANCELLATION_WORKFLOW,
    MAKEUP_CREDIT_WORKFLOW,
    UPDATE_EXTEND,
    UPDATE_RECORD_USE,
    UPDATE_VOID,
    ExtendCredit,
    LessonCancellationInput,
    MakeupCreditInput,
    MakeupCreditState,
    RecordUse,
    VoidCredit,
)
from core.settings import Settings
from core.temporal import lesson_cancellation_workflow_id, makeup_credit_workflow_id
from domain.makeups import (
    CancelledBy,
    CreditStatus,
    MakeupPolicy,
    Outcome,
    attendance_outcome,
    booking_problem,
    booking_window,
    cancellation_outcome,
    credit_expiry,
    credit_problem,
    extension_problem,
    void_problem,
)
from domain.slots import iter_slots
from models import Lesson, LessonKind, MakeupCredit, Role, Student

_CREDIT = "the make-up credit's workflow"


@dataclass(frozen=True)
class CancellationOutcome:
    cancelled_by: CancelledBy
    outcome: Outcome
    parent_id: uuid.UUID
    credit: MakeupCredit | None
    reminder_before: timedelta
    excused: bool = False  # an excused absence, not a cancellation: its notices say so


def _cancelled_by(principal: Principal) -> CancelledBy:
    if principal.role == Role.parent:
        return CancelledBy.family
    return CancelledBy.teacher if principal.role == Role.teacher else CancelledBy.school


async def _instrument(session: AsyncSession, lesson: Lesson, student: Student) -> str:
    if lesson.enrollment_id is not None:
        enrollment = await enrollments.get(session, lesson.enrollment_id)
        if enrollment is not None:
            return enrollment.instrument
    return student.instrument or "piano"


async def decide_cancellation(
    session: AsyncSession, settings: Settings, principal: Principal, lesson: Lesson, reason: str
) -> CancellationOutcome:
    """The outcome of cancelling ``lesson`` now (by the school's policy), and its credit row when it earns one.
    Called inside the cancelling transaction, before it commits."""
    policy = await repository.policy(session, settings)
    by = _cancelled_by(principal)
    now = datetime.now(UTC)
    outcome = cancellation_outcome(by, lesson.starts_at, now, policy)
    reason = f"lesson cancelled by the {by}" + (f": {reason}" if reason else "")
    return await _decided(session, principal, lesson, by, outcome, reason, policy, now)


async def decide_excused(
    session: AsyncSession, settings: Settings, principal: Principal, lesson: Lesson
) -> CancellationOutcome:
    """An excused absence: a family absence the school accepts, so a credit, as a cancellation that earns one.
    Called inside the marking transaction, before it commits, when the lesson has no credit yet."""
    policy = await repository.policy(session, settings)
    outcome = attendance_outcome(excused=True)
    reason = "excused absence"
    decided = await _decided(session, principal, lesson, CancelledBy.family, outcome, reason, policy, datetime.now(UTC))
    return replace(decided, excused=True)


async def excused_again(
    session: AsyncSession, settings: Settings, lesson: Lesson, credit: MakeupCredit
) -> CancellationOutcome:
    """A lesson marked excused again: its credit as it was decided, to announce again (a no-op when its
    workflows run already, so a retry after a failed announcement completes it)."""
    policy = await repository.policy(session, settings)
    student = await session.get(Student, lesson.student_id)
    assert student is not None
    return CancellationOutcome(
        CancelledBy.family, Outcome.credit, student.parent_id, credit, policy.reminder_before, excused=True
    )


async def _decided(
    session: AsyncSession,
    principal: Principal,
    lesson: Lesson,
    by: CancelledBy,
    outcome: Outcome,
    reason: str,
    policy: MakeupPolicy,
    now: datetime,
) -> CancellationOutcome:
    student = await session.get(Student, lesson.student_id)
    assert student is not None
    credit = None
    if outcome == Outcome.credit:
        credit = MakeupCredit(
            parent_id=student.parent_id,
            student_id=student.id,
            teacher_id=lesson.teacher_id,
            instrument=await _instrument(session, lesson, student),
            lesson_minutes=int((lesson.ends_at - lesson.starts_at).total_seconds() // 60),
            origin_lesson_id=lesson.id,
            reason=reason[:500],
            expires_at=credit_expiry(now, policy),
        )
        session.add(credit)
        await session.flush()
        await audit_write(session, principal, "makeup_earn", "makeup_credit", credit.id, after=snapshot(credit))
    return CancellationOutcome(by, outcome, student.parent_id, credit, policy.reminder_before)


async def announce_cancellation(
    temporal: Client, settings: Settings, lesson: Lesson, decided: CancellationOutcome
) -> None:
    """After the cancellation committed: the credit's workflow, and the notices to the family and the teacher."""
    credit = decided.credit
    if credit is not None:
        await start_credit(temporal, settings, credit, decided.reminder_before, announce=False)
    notice = LessonCancellationInput(
        lesson_id=lesson.id,
        parent_id=decided.parent_id,
        teacher_id=lesson.teacher_id,
        starts_at=lesson.starts_at,
        cancelled_by=decided.cancelled_by.value,
        outcome=decided.outcome.value,
        credit_id=credit.id if credit else None,
        credit_expires_at=credit.expires_at if credit else None,
        excused=decided.excused,
    )
    await _start(
        temporal,
        settings,
        LESSON_CANCELLATION_WORKFLOW,
        notice,
        lesson_cancellation_workflow_id(lesson.id),
        f"Cancelled lesson: {decided.outcome.value}, cancelled by {decided.cancelled_by.value}",
    )


async def start_credit(
    temporal: Client, settings: Settings, credit: MakeupCredit, reminder_before: timedelta, *, announce: bool
) -> None:
    request = MakeupCreditInput(
        credit_id=credit.id,
        parent_id=credit.parent_id,
        teacher_id=credit.teacher_id,
        expires_at=credit.expires_at,
        reminder_before=reminder_before,
        announce=announce,
    )
    await _start(
        temporal,
        settings,
        MAKEUP_CREDIT_WORKFLOW,
        request,
        makeup_credit_workflow_id(credit.id),
        f"Make-up credit, expires {credit.expires_at:%Y-%m-%d}",
    )


async def _start(
    temporal: Client, settings: Settings, workflow: str, request: BaseModel, workflow_id: str, summary: str
) -> None:
    """``summary``: the Temporal UI's line for the workflow (kinds, dates and ids only, never personal data)."""
    async with bounded(settings.temporal_update_timeout, _CREDIT):
        # The same request, retried: its workflow runs already.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await temporal.start_workflow(
                workflow,
                request,
                id=workflow_id,
                task_queue=settings.task_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=summary,
                rpc_timeout=settings.temporal_update_timeout,
            )


async def _update(temporal: Client, settings: Settings, credit_id: uuid.UUID, name: str, message: BaseModel) -> Any:
    handle = temporal.get_workflow_handle(makeup_credit_workflow_id(credit_id))
    timeout = settings.temporal_update_timeout
    async with bounded(timeout, _CREDIT):
        try:
            return await handle.execute_update(name, message, result_type=MakeupCreditState, rpc_timeout=timeout)
        except WorkflowUpdateFailedError as error:
            cause = error.cause
            reason = cause.message if isinstance(cause, FailureError) else str(error)
            raise Conflict(reason, {"credit_id": reason}) from error
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise Conflict("the credit is no longer open", {"credit_id": "no longer open"}) from error
            raise


# --- the family's side ---------------------------------------------------------------------------------------


async def list_credits(
    session: AsyncSession, principal: Principal, student_id: uuid.UUID | None, status: CreditStatus | None
) -> Sequence[MakeupCredit]:
    return await repository.credits(session, principal, student_id, status)


@dataclass(frozen=True)
class OpenSlot:
    teacher_id: uuid.UUID
    starts_at: datetime
    ends_at: datetime


async def open_slots(
    session: AsyncSession, settings: Settings, principal: Principal, credit_id: uuid.UUID
) -> list[OpenSlot]:
    """Where the credit's make-up can go: its teacher's free slots (or every teacher of the instrument's, as the
    policy allows) within the school's booking horizon, free for the student too."""
    credit = await repository.credit(session, principal, credit_id)
    now = datetime.now(UTC)
    problem = credit_problem(credit.status, credit.expires_at, now)
    if problem is not None:
        raise Conflict(problem, {"credit_id": problem})
    policy = await repository.policy(session, settings)
    earliest, latest = booking_window(now, policy)
    teacher_ids = [credit.teacher_id]
    if policy.any_teacher:
        teacher_ids += [t for t in await repository.teachers_of(session, credit.instrument) if t != credit.teacher_id]
    windows = await repository.availability(session, teacher_ids)
    taken, student_busy = await repository.busy(session, teacher_ids, credit.student_id, earliest, latest)
    closures = await repository.closures(session)
    length = timedelta(minutes=credit.lesson_minutes)
    found: list[OpenSlot] = []
    for teacher_id in teacher_ids:
        busy = taken[teacher_id] + student_busy
        for index, (start, end) in enumerate(
            iter_slots(
                windows[teacher_id], windows[teacher_id], busy, closures, length, earliest, latest, settings.timezone
            )
        ):
            if index >= settings.makeup_slots_limit:
                break
            found.append(OpenSlot(teacher_id, start, end))
    found.sort(key=lambda slot: (slot.starts_at, str(slot.teacher_id)))
    return found[: settings.makeup_slots_limit]


async def book(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    credit_id: uuid.UUID,
    body: MakeupBooking,
) -> tuple[Lesson, MakeupCreditState]:
    """Books the credit's make-up at ``body.starts_at``: 422 for a used or expired credit or a time outside the
    horizon, 409 when another request took the credit or the slot first."""
    now = datetime.now(UTC)
    credit = await repository.credit(session, principal, credit_id)
    problem = credit_problem(credit.status, credit.expires_at, now)
    if problem is not None:
        raise invalid("credit_id", problem)
    policy = await repository.policy(session, settings)
    problem = booking_problem(body.starts_at, now, policy)
    if problem is not None:
        raise invalid("starts_at", problem)
    teacher_id = body.teacher_id or credit.teacher_id
    if teacher_id != credit.teacher_id:
        if not policy.any_teacher:
            raise invalid("teacher_id", "a make-up is booked with the student's own teacher")
        if teacher_id not in await repository.teachers_of(session, credit.instrument):
            raise invalid("teacher_id", f"not an active {credit.instrument} teacher")
    lesson = Lesson(
        kind=LessonKind.makeup,
        teacher_id=teacher_id,
        student_id=credit.student_id,
        starts_at=body.starts_at,
        ends_at=body.starts_at + timedelta(minutes=credit.lesson_minutes),
        notes="make-up lesson",
    )
    await place_lesson(session, lesson, Slot.of(lesson), settings, within_availability=True)
    if not await repository.claim(session, credit.id, lesson.id, now):
        raise Conflict("another request used this credit first", {"credit_id": "already used"})
    await audit_write(session, principal, "create", "lesson", lesson.id, after=snapshot(lesson))
    await audit_write(
        session,
        principal,
        "makeup_book",
        "makeup_credit",
        credit.id,
        before={"status": CreditStatus.available.value},
        after={"status": CreditStatus.used.value, "used_lesson_id": str(lesson.id)},
    )
    # The booking is decided and committed; only now is the credit's workflow told.
    await session.commit()
    state: MakeupCreditState = await _update(
        temporal, settings, credit_id, UPDATE_RECORD_USE, RecordUse(lesson_id=lesson.id, used_at=now)
    )
    return lesson, state


# --- the office's side ---------------------------------------------------------------------------------------


async def grant(
    session: AsyncSession, temporal: Client, settings: Settings, principal: Principal, body: CreditGrant
) -> MakeupCredit:
    student = await students.student(session, principal, body.student_id)
    teacher_id = body.teacher_id or await repository.latest_teacher(session, student.id)
    if teacher_id is None:
        raise invalid("teacher_id", "required: the student has no lessons yet")
    teacher = await teachers.teacher(session, principal, teacher_id)
    policy = await repository.policy(session, settings)
    credit = MakeupCredit(
        parent_id=student.parent_id,
        student_id=student.id,
        teacher_id=teacher.id,
        instrument=student.instrument or (teacher.instruments[0] if teacher.instruments else "piano"),
        lesson_minutes=body.minutes,
        reason=body.reason,
        expires_at=credit_expiry(datetime.now(UTC), policy),
    )
    session.add(credit)
    await session.flush()
    await audit_write(session, principal, "makeup_grant", "makeup_credit", credit.id, after=snapshot(credit))
    await session.commit()
    await start_credit(temporal, settings, credit, policy.reminder_before, announce=True)
    return credit


async def extend(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    credit_id: uuid.UUID,
    body: CreditExtend,
) -> MakeupCreditState:
    credit = await repository.credit(session, principal, credit_id)
    by = timedelta(days=body.days)
    problem = extension_problem(credit.status, by)
    if problem is not None:
        raise Conflict(problem, {"credit_id": problem})
    message = ExtendCredit(by=by, reason=body.reason, actor_user_id=principal.user_id)
    state: MakeupCreditState = await _update(temporal, settings, credit_id, UPDATE_EXTEND, message)
    await audit_write(
        session,
        principal,
        "makeup_extend",
        "makeup_credit",
        credit_id,
        before={"expires_at": credit.expires_at.isoformat()},
        after={"expires_at": state.expires_at.isoformat(), "days": body.days, "reason": body.reason},
    )
    return state


async def void(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    credit_id: uuid.UUID,
    body: CreditVoid,
) -> MakeupCreditState:
    credit = await repository.credit(session, principal, credit_id)
    return await void_credit(session, temporal, settings, principal, credit, body.reason)


async def void_credit(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    credit: MakeupCredit,
    reason: str,
) -> MakeupCreditState:
    """Voids an available credit through its workflow (409 when it is no longer available) and audits it with
    ``reason``: the office's void, and an excused lesson marked otherwise (``api/services/attendance.py``)."""
    problem = void_problem(credit.status)
    if problem is not None:
        raise Conflict(problem, {"credit_id": problem})
    message = VoidCredit(reason=reason, actor_user_id=principal.user_id)
    state: MakeupCreditState = await _update(temporal, settings, credit.id, UPDATE_VOID, message)
    await audit_write(
        session,
        principal,
        "makeup_void",
        "makeup_credit",
        credit.id,
        before={"status": credit.status},
        after={"status": state.status, "reason": reason},
    )
    return state
