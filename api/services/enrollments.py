"""Enrollments: the public form's idempotent insert and the workflow start (or the compensating delete), the
progress view, the staff's and family's updates to the running workflow, and the family-confirmation link.

The row is written in its own transaction and the workflow is started after the commit, with an id derived
from the row's id, so a retried request (same ``Idempotency-Key``) finds the same row and the same workflow.
"""

from __future__ import annotations

import hmac
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import SearchAttributePair, TypedSearchAttributes, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.enrollment import cancel_future_lessons_of, deactivate_student_of, mirror, release_teacher_of
from api.deps import AppContext, get_temporal
from api.errors import CedarError, Conflict, NotFound
from api.pagination import PageParams, SortOrder
from api.principal import Principal
from api.repositories import catalog
from api.repositories import enrollments as repository
from api.repositories.audit import audit_staff_reads
from api.schemas.enrollment import EnrollmentCreate, settings_problems
from api.temporal_calls import bounded
from core.audit import record_audit
from core.contracts.billing import SIGNAL_STUDENT_STOPPED, StudentStopped
from core.contracts.enrollment import (
    ENROLLMENT_WORKFLOW,
    QUERY_STATUS,
    UPDATE_ASSIGN_TEACHER,
    UPDATE_CANCEL,
    UPDATE_CONFIRM_FAMILY,
    UPDATE_DEMO_OUTCOME,
    Accepted,
    AssignTeacherRequest,
    CancelRequest,
    ConfirmFamilyRequest,
    DemoOutcome,
    DemoOutcomeRequest,
    EnrollmentInput,
    FamilyDecision,
    StatusView,
)
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.temporal import ENROLLMENT_STATE, LazyTemporalClient, billing_workflow_id, enrollment_workflow_id
from core.tokens import hash_token
from domain.calendar import WeeklyWindow
from domain.enrollment_flow import application_fingerprint, windows_to_json
from domain.enrollment_rules import TERMINAL_STATES, EnrollmentState
from models import Enrollment, Parent, Role, Teacher

CLOSED = frozenset(s.value for s in TERMINAL_STATES if s != EnrollmentState.ACTIVE)

# Who is calling, resolved inside the enrollment's transaction (a bad token is a 401; None: nobody signed in).
CallerLookup = Callable[[AsyncSession], Awaitable[Principal | None]]


async def page(
    session: AsyncSession, principal: Principal, page: PageParams, order: SortOrder, states: Sequence[str]
) -> tuple[Sequence[Any], int]:
    """The enrollments the staff member may see (the office all, a teacher their own), their reads audited."""
    rows, total = await repository.list_enrollments(session, principal, page, order, states)
    await audit_staff_reads(session, principal, "enrollment", (row.id for row in rows))
    return rows, total


@dataclass(frozen=True)
class Listed:
    """An enrollment as the staff's pages show it: the row, the child's first name (from the application, as the
    JSON list), its teacher's display name and its demo lesson's start."""

    enrollment: Enrollment
    student_first_name: str
    teacher_display_name: str | None
    demo_starts_at: datetime | None


async def listed(
    session: AsyncSession, principal: Principal, params: PageParams, order: SortOrder, states: Sequence[str]
) -> tuple[list[Listed], int]:
    """:func:`page` (the same scope and audit) with what a page shows beside each row."""
    rows, total = await page(session, principal, params, order, states)
    teachers, demos = await repository.teachers_and_demos(session, rows)
    return [
        Listed(
            row,
            str((row.application or {}).get("student", {}).get("first_name", "")),
            teachers.get(row.teacher_id) if row.teacher_id else None,
            demos.get(row.demo_lesson_id) if row.demo_lesson_id else None,
        )
        for row in rows
    ], total


async def create(
    sessions: SessionFactory,
    temporal: Client,
    settings: Settings,
    body: EnrollmentCreate,
    idempotency_key: str | None,
    caller: CallerLookup,
) -> Enrollment:
    """The enrollment (new, or the one this key made before), its workflow started. Without a key, a workflow
    that cannot start leaves nothing behind: the row is deleted again and the deletion audited."""
    async with transaction(sessions) as session:
        # The enrollment options list these same instruments: what the form offers, it accepts.
        instruments = [instrument.code for instrument in await catalog.active_instruments(session)]
        problems = settings_problems(body, settings, datetime.now(settings.timezone).date(), instruments)
        family = await _signed_in_family(session, caller)
        problems |= await _applicant_problems(session, body, family)
        if problems:
            raise CedarError(422, "validation_error", "the request is invalid", problems)
        application = body.model_dump(mode="json")
        if family is not None:
            application["parent"] = _parent_json(family)
        fingerprint = application_fingerprint(application)
        enrollment = await _find_or_insert(session, body, application, fingerprint, idempotency_key, family)
    try:
        await _start_workflow(temporal, settings, enrollment)
    except CedarError:
        if idempotency_key is None:
            # Without a key the client cannot resume this row, so leave nothing half-made behind.
            async with transaction(sessions) as session:
                await repository.delete_enrollment(session, enrollment.id)
                await record_audit(
                    session,
                    actor_user_id=None,
                    actor_role="system",
                    action="delete",
                    entity_type="enrollment",
                    entity_id=enrollment.id,
                    after={"reason": "the workflow service was unavailable"},
                )
        raise
    return enrollment


async def _signed_in_family(session: AsyncSession, caller: CallerLookup) -> Parent | None:
    """The family of a signed-in parent; None for anyone else."""
    principal = await caller(session)
    if principal is None or principal.parent_id is None:
        return None
    return await repository.parent(session, principal.parent_id)


async def _applicant_problems(session: AsyncSession, body: EnrollmentCreate, family: Parent | None) -> dict[str, str]:
    if family is not None:
        if body.parent is not None and body.parent.email.lower() != family.email:
            return {"parent.email": "you are signed in as another family's parent; sign out to enroll for them"}
        return {}
    if body.parent is None:
        return {"parent": "required, unless you are signed in as the family's parent"}
    role = await repository.account_role(session, body.parent.email.lower())
    if role is not None and role != Role.parent:
        return {"parent.email": "this address belongs to a staff account; enroll with the family's own address"}
    return {}


def _parent_json(family: Parent) -> dict[str, str]:
    return {
        "first_name": family.first_name,
        "last_name": family.last_name,
        "email": family.email,
        "phone": family.phone,
    }


async def _find_or_insert(
    session: AsyncSession,
    body: EnrollmentCreate,
    application: dict[str, Any],
    fingerprint: str,
    key: str | None,
    family: Parent | None,
) -> Enrollment:
    if key is not None:
        existing = await repository.by_idempotency_key(session, key)
        if existing is not None:
            return _same_request(existing, fingerprint)
    enrollment_id = uuid.uuid4()
    values: dict[str, Any] = {
        "id": enrollment_id,
        "idempotency_key": key,
        "request_hash": fingerprint,
        "workflow_id": enrollment_workflow_id(enrollment_id),
        "state": EnrollmentState.RECEIVED.value,
        "instrument": body.instrument,
        "lesson_minutes": body.lesson_minutes,
        "billing_interval": body.billing_interval.value,
        "preferred_windows": windows_to_json([WeeklyWindow(w.weekday, w.start, w.end) for w in body.preferred_windows]),
        "application": application,
        "stripe_payment_method_id": body.payment_method_id,
        # The signed-in parent's own act is the family's confirmation.
        "parent_id": family.id if family else None,
        "family_confirmed_at": datetime.now(UTC) if family else None,
        "steps": [{"state": EnrollmentState.RECEIVED.value, "at": datetime.now(UTC).isoformat()}],
    }
    # A concurrent request with the same key may have inserted first: then answer with its row.
    inserted = await repository.insert_unless_key_taken(session, values)
    if inserted is None:
        assert key is not None  # without a key nothing can conflict
        existing = await repository.by_idempotency_key(session, key)
        assert existing is not None
        return _same_request(existing, fingerprint)
    await record_audit(
        session,
        actor_user_id=family.user_id if family else None,
        actor_role="parent" if family else "public",
        action="create",
        entity_type="enrollment",
        entity_id=inserted,
    )
    return Enrollment(**values)  # what was just written: no second round trip to read it back


def _same_request(existing: Enrollment, fingerprint: str) -> Enrollment:
    if existing.request_hash != fingerprint:
        raise Conflict("this Idempotency-Key was already used with a different request body")
    return existing


async def _start_workflow(temporal: Client, settings: Settings, enrollment: Enrollment) -> None:
    try:
        await temporal.start_workflow(
            ENROLLMENT_WORKFLOW,
            EnrollmentInput(enrollment_id=enrollment.id, payment_method_id=enrollment.stripe_payment_method_id),
            id=enrollment.workflow_id,
            task_queue=settings.enrollment_queue,
            # A finished enrollment is never started again by a retried request.
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=TypedSearchAttributes(
                [SearchAttributePair(ENROLLMENT_STATE, EnrollmentState.RECEIVED.value)]
            ),
            # The Temporal UI's line: the lesson asked for, never the family's data.
            static_summary=f"Enrollment: {enrollment.instrument} {enrollment.lesson_minutes} min, "
            f"billed by {enrollment.billing_interval}",
            # Runs the first workflow task in this process when its own worker polls the enrollments' queue.
            request_eager_start=True,
            rpc_timeout=settings.temporal_update_timeout,
        )
    except WorkflowAlreadyStartedError:
        pass  # the same request, retried: its workflow runs already
    except RPCError as exc:
        detail = (
            "the enrollment is saved but could not start; retry with the same Idempotency-Key"
            if enrollment.idempotency_key
            else "the enrollment service is unavailable and nothing was saved; retry later"
        )
        raise CedarError(503, "temporal_unavailable", detail) from exc


@dataclass(frozen=True)
class Progress:
    enrollment: Enrollment
    view: StatusView
    teacher: Teacher | None


async def progress(
    session: AsyncSession, temporal: LazyTemporalClient, settings: Settings, enrollment_id: uuid.UUID
) -> Progress:
    """The running workflow's view of the enrollment, or the database mirror's once it has finished."""
    enrollment = await _enrollment_or_404(session, enrollment_id)
    view = None
    if enrollment.state not in CLOSED:
        view = await _ask_workflow(temporal, settings, enrollment)
    if view is None:
        view = StatusView(
            state=enrollment.state,
            steps=enrollment.steps,
            teacher_id=enrollment.teacher_id,
            failure_reason=enrollment.failure_reason,
        )
        view.demo_starts_at = await repository.lesson_start(session, enrollment.demo_lesson_id)
    return Progress(enrollment, view, await repository.teacher(session, view.teacher_id))


async def _ask_workflow(temporal: LazyTemporalClient, settings: Settings, enrollment: Enrollment) -> StatusView | None:
    """The running workflow's own view; None when it cannot answer (finished, or no worker right now)."""
    try:
        client = await temporal.get()
        handle = client.get_workflow_handle(enrollment.workflow_id)
        timeout = settings.temporal_query_timeout
        async with bounded(timeout, "the enrollment's workflow"):
            view: StatusView = await handle.query(QUERY_STATUS, result_type=StatusView, rpc_timeout=timeout)
        return view
    except Exception:  # the database mirror answers instead; it is at most one step behind
        return None


async def _enrollment_or_404(session: AsyncSession, enrollment_id: uuid.UUID) -> Enrollment:
    enrollment = await repository.get(session, enrollment_id)
    if enrollment is None:
        raise NotFound("enrollment")
    return enrollment


async def _update(
    temporal: Client, settings: Settings, enrollment: Enrollment, update: str, argument: object, action: str
) -> Accepted:
    """Send an update to the workflow; a refusal (or a finished workflow) is a 409 with the reason."""
    if enrollment.state in CLOSED:
        raise Conflict(f"the enrollment is already {enrollment.state}")
    handle = temporal.get_workflow_handle(enrollment.workflow_id)
    try:
        # A deadline or an unreachable server is a 504 or 503 from here, not a refusal.
        timeout = settings.temporal_update_timeout
        async with bounded(timeout, "the enrollment's workflow"):
            accepted: Accepted = await handle.execute_update(
                update, argument, result_type=Accepted, rpc_timeout=timeout
            )
        return accepted
    except WorkflowUpdateFailedError as exc:
        cause = exc.cause
        reason = getattr(cause, "message", None) or str(cause or exc)
        raise Conflict(f"{action} is not possible now: {reason}") from exc
    except RPCError as exc:
        raise Conflict(f"{action} is not possible now: the enrollment's workflow is not running") from exc


async def _audit(
    session: AsyncSession, principal: Principal, action: str, enrollment: Enrollment, after: dict
) -> uuid.UUID:
    return await record_audit(
        session,
        actor_user_id=principal.user_id,
        actor_role=str(principal.role),
        action=action,
        entity_type="enrollment",
        entity_id=enrollment.id,
        after=after,
    )


async def report_demo_outcome(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    enrollment_id: uuid.UUID,
    outcome: DemoOutcome,
) -> Accepted:
    """An admin, or the enrollment's own teacher (another teacher's enrollment is not found)."""
    enrollment = await _enrollment_or_404(session, enrollment_id)
    if not principal.is_admin and (principal.teacher_id is None or principal.teacher_id != enrollment.teacher_id):
        raise NotFound("enrollment")
    request = DemoOutcomeRequest(outcome=outcome)
    accepted = await _update(temporal, settings, enrollment, UPDATE_DEMO_OUTCOME, request, "reporting the outcome")
    await _audit(session, principal, "demo_outcome", enrollment, {"outcome": outcome.value})
    return accepted


async def cancel(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    enrollment_id: uuid.UUID,
    reason: str | None,
) -> Accepted:
    """An admin, or the enrollment's own family (another family's enrollment is not found)."""
    enrollment = await _enrollment_or_404(session, enrollment_id)
    if not principal.is_admin and (principal.parent_id is None or principal.parent_id != enrollment.parent_id):
        raise NotFound("enrollment")
    # The public status page and the workflow history show only who cancelled; the free-text reason, which may
    # name people, goes to the audit log, which only admins read.
    public_reason = "cancelled by the office" if principal.is_admin else "cancelled by the family"
    if enrollment.state == EnrollmentState.ACTIVE and not await workflow_running(temporal, settings, enrollment):
        # Active without a workflow (started before semester ends were tracked, or imported): the same
        # compensations run here, and billing, if the family has any, stops after the last lesson that happens.
        closed = await close_without_workflow(session, principal, enrollment.id, reason, via="enrollment cancel")
        await tell_billing_stopped(temporal, settings, enrollment, public_reason, closed.last_lesson_ends_at)
        return Accepted(state=EnrollmentState.CANCELLED.value)
    # Audited first: the update carries the audit row's id, and a refused update rolls the row back with it.
    note_id = await _audit(
        session, principal, "cancel", enrollment, {"reason": reason if reason is not None else public_reason}
    )
    request = CancelRequest(reason=public_reason, note_id=note_id)
    return await _update(temporal, settings, enrollment, UPDATE_CANCEL, request, "cancelling")


async def enrollment_row(session: AsyncSession, enrollment_id: uuid.UUID) -> Enrollment | None:
    return await repository.get(session, enrollment_id)


async def workflow_running(temporal: Client, settings: Settings, enrollment: Enrollment) -> bool:
    """Whether the enrollment's own workflow still runs (so its cancel, with its compensations, stops it)."""
    if enrollment.state in CLOSED:
        return False
    handle = temporal.get_workflow_handle(enrollment.workflow_id)
    timeout = settings.temporal_query_timeout
    try:
        async with bounded(timeout, "the enrollment's workflow"):
            described = await handle.describe(rpc_timeout=timeout)
    except RPCError as error:
        if error.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return described.status == WorkflowExecutionStatus.RUNNING


@dataclass(frozen=True)
class ClosedWithoutWorkflow:
    lessons_cancelled: int
    place_freed: bool
    enrollment_cancelled: bool
    last_lesson_ends_at: datetime | None


async def close_without_workflow(
    session: AsyncSession,
    principal: Principal,
    enrollment_id: uuid.UUID,
    reason: str | None,
    via: str = "billing stop",
) -> ClosedWithoutWorkflow:
    """What the enrollment's compensations do, for an enrollment whose workflow is gone (its semester ended):
    future lessons cancelled, the teacher's place given back, the student deactivated unless another enrollment
    keeps them, the row cancelled (unless it is closed already), with the same code the activities run."""
    enrollment = await repository.locked(session, enrollment_id)
    if enrollment is None:
        raise NotFound("enrollment")
    cancelled = await cancel_future_lessons_of(session, enrollment.id)
    closing = enrollment.state not in CLOSED
    freed = closing and enrollment.teacher_id is not None
    if closing:  # a closed enrollment gave its place back when it closed
        await release_teacher_of(session, enrollment)
        public_reason = "cancelled by the office" if principal.is_admin else "cancelled by the family"
        mirror(enrollment, EnrollmentState.CANCELLED.value, public_reason)
        await deactivate_student_of(session, enrollment)
    await session.flush()
    after = {"reason": reason, "lessons_cancelled": cancelled, "place_freed": freed, "via": via}
    # A closed enrollment is not cancelled again: only its billing stops.
    await _audit(session, principal, "cancel" if closing else "stop_billing", enrollment, after)
    return ClosedWithoutWorkflow(cancelled, freed, closing, await repository.last_lesson_end(session, enrollment.id))


async def tell_billing_stopped(
    temporal: Client, settings: Settings, enrollment: Enrollment, reason: str, last_lesson_ends_at: datetime | None
) -> None:
    """Billing stops charging for the enrollment after ``last_lesson_ends_at`` (at the latest now); a family whose
    billing never started (no workflow) has nothing to stop."""
    if enrollment.parent_id is None or enrollment.student_id is None:
        return
    now = datetime.now(UTC)
    stopped = StudentStopped(
        enrollment_id=enrollment.id,
        parent_id=enrollment.parent_id,
        student_id=enrollment.student_id,
        reason=reason,
        last_lesson_ends_at=min(last_lesson_ends_at or now, now),
    )
    handle = temporal.get_workflow_handle(billing_workflow_id(enrollment.parent_id))
    try:
        async with bounded(settings.temporal_query_timeout, "the family's billing"):
            await handle.signal(SIGNAL_STUDENT_STOPPED, stopped, rpc_timeout=settings.temporal_query_timeout)
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise


async def assign_teacher(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    enrollment_id: uuid.UUID,
    teacher_id: uuid.UUID,
) -> Accepted:
    enrollment = await _enrollment_or_404(session, enrollment_id)
    teacher = await repository.teacher(session, teacher_id)
    if teacher is None or not teacher.is_active:
        raise CedarError(422, "validation_error", "the request is invalid", {"teacher_id": "no such active teacher"})
    if enrollment.instrument not in teacher.instruments:
        raise Conflict(f"this teacher does not teach {enrollment.instrument}", {"teacher_id": "wrong instrument"})
    request = AssignTeacherRequest(teacher_id=teacher.id)
    accepted = await _update(temporal, settings, enrollment, UPDATE_ASSIGN_TEACHER, request, "assigning the teacher")
    await _audit(session, principal, "assign_teacher", enrollment, {"teacher_id": str(teacher.id)})
    return accepted


async def answer_family_confirmation(
    context: AppContext, enrollment_id: uuid.UUID, token: str, decision: FamilyDecision
) -> Accepted:
    """The emailed link's answer, for the API and the link's page: a wrong token is indistinguishable from an
    unknown enrollment; a right one works only while the enrollment waits for it."""
    enrollment = await confirmation_request(context, enrollment_id, token)
    temporal = await get_temporal(context)
    request = ConfirmFamilyRequest(decision=decision)
    accepted = await _update(temporal, context.settings, enrollment, UPDATE_CONFIRM_FAMILY, request, "answering")
    async with transaction(context.sessions) as session:
        await record_audit(
            session,
            actor_user_id=None,
            actor_role="public",
            action=f"family_{decision.value}",
            entity_type="enrollment",
            entity_id=enrollment.id,
        )
    return accepted


async def confirmation_request(context: AppContext, enrollment_id: uuid.UUID, token: str) -> Enrollment:
    """The enrollment the link's token opens, while it still waits for the family's answer."""
    async with context.read_sessions() as session:
        enrollment = await repository.get(session, enrollment_id)
    if enrollment is None or not _token_matches(enrollment, token):
        raise NotFound("confirmation link")
    if enrollment.state != EnrollmentState.AWAITING_CONFIRMATION:
        raise Conflict(f"this enrollment no longer waits for an answer: it is {enrollment.state.replace('_', ' ')}")
    return enrollment


def _token_matches(enrollment: Enrollment, token: str) -> bool:
    expected = enrollment.confirmation_token_hash
    return expected is not None and hmac.compare_digest(expected, hash_token(token))
