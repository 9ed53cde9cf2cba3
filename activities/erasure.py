"""The erasure workflow's and the retention workflow's steps: each one idempotent, so a retry (or a second
erasure of the same family) finds its own work done and changes nothing.

What these activities return travels through workflow history: ids and counts only.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import stripe
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlmodel import col
from temporalio import activity
from temporalio.api.namespace.v1 import NamespaceConfig
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, UpdateNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.enrollment import cancel_future_lessons_of, deactivate_student_of, mirror, release_teacher_of
from api.repositories import privacy as repository
from core.audit import record_audit
from core.contracts.erasure import (
    CLOSE_REASON,
    STEP_BLANK_ROWS,
    STEP_CLOSE_WORKFLOWS,
    STEP_DELETE_STRIPE_CUSTOMER,
    STEP_DESTROY_PAYLOAD_KEYS,
    STEP_REDACT_AUDIT,
    STEP_REDACT_WEBHOOKS,
    STEP_REMOVE_LOGIN,
    ErasureReport,
    FamilyRef,
    FamilyWorkflows,
    StepResult,
    WriteReport,
)
from core.contracts.retention import ClosedFamilies, RetentionCutoffs, RetentionRequest
from core.db import SessionFactory, transaction
from core.identity import IdentityService
from core.payload_codec import EncryptionCodec
from core.payload_keys import destroy_family_keys
from core.settings import Settings
from domain.enrollment_rules import EnrollmentState
from models import Enrollment
from models import ErasureReport as ErasureReportRow

# The payload codec's per-family keys (crypto-shredding) live in this module once the codec is in place.
CLOSED_FAMILIES_PER_RUN = 50
DAYS_PER_YEAR = 365


class ErasureActivities:
    def __init__(
        self,
        settings: Settings,
        sessions: SessionFactory,
        temporal: Client,
        stripe_client: stripe.StripeClient,
        identity: IdentityService,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._temporal = temporal
        self._stripe = stripe_client
        self._identity = identity

    # --- the erasure's steps ------------------------------------------------------------------------------------

    @activity.defn(name="erasure_family_workflows")
    async def family_workflows(self, family: FamilyRef) -> FamilyWorkflows:
        async with self._sessions() as session:
            ids = await repository.family_workflow_ids(session, family.parent_id)
        return FamilyWorkflows(parent_id=family.parent_id, workflow_ids=ids)

    @activity.defn(name="erasure_close_workflows")
    async def close_workflows(self, family: FamilyWorkflows) -> StepResult:
        """Terminates each of the family's workflows still running (a closed or unknown one is left alone)."""
        closed = 0
        for workflow_id in family.workflow_ids:
            try:
                await self._temporal.get_workflow_handle(workflow_id).terminate(reason=CLOSE_REASON)
                closed += 1
            except RPCError as error:
                if error.status != RPCStatusCode.NOT_FOUND:  # not found: closed already, or never started
                    raise
        return StepResult(step=STEP_CLOSE_WORKFLOWS, where="temporal", count=closed)

    @activity.defn(name="erasure_blank_rows")
    async def blank_rows(self, family: FamilyRef) -> StepResult:
        """Closes the family's live enrollments as their workflows' compensations would (their workflows are
        gone), then blanks every personal field; money records stay, pointing at the family by id only."""
        async with transaction(self._sessions) as session:
            live = await session.scalars(
                select(Enrollment)
                .where(
                    col(Enrollment.parent_id) == family.parent_id,
                    col(Enrollment.state).in_(repository.LIVE_ENROLLMENT_STATES),
                )
                .with_for_update()
            )
            closed = 0
            for enrollment in live.all():
                await cancel_future_lessons_of(session, enrollment.id)
                await release_teacher_of(session, enrollment)
                mirror(enrollment, EnrollmentState.CANCELLED.value, "cancelled: the family was erased")
                await deactivate_student_of(session, enrollment)
                closed += 1
            await session.flush()
            counts = await repository.erase_family(session, self._identity, family.parent_id)
            counts["free_text"] = await repository.blank_family_free_text(session, family.parent_id)
        counts = {"enrollments_closed": closed, **counts}
        note = ", ".join(f"{kind} {count}" for kind, count in counts.items())
        return StepResult(step=STEP_BLANK_ROWS, where="database", count=sum(counts.values()), note=note)

    @activity.defn(name="erasure_redact_audit")
    async def redact_audit(self, family: FamilyRef) -> StepResult:
        async with transaction(self._sessions) as session:
            count = await repository.redact_family_audit(session, family.parent_id)
        return StepResult(step=STEP_REDACT_AUDIT, where="audit_log", count=count)

    @activity.defn(name="erasure_redact_webhooks")
    async def redact_webhooks(self, family: FamilyRef) -> StepResult:
        async with transaction(self._sessions) as session:
            customer_id = await repository.family_customer_id(session, family.parent_id)
            count = 0 if customer_id is None else await repository.redact_customer_events(session, customer_id)
        return StepResult(step=STEP_REDACT_WEBHOOKS, where="stripe_events", count=count)

    @activity.defn(name="erasure_delete_stripe_customer")
    async def delete_stripe_customer(self, family: FamilyRef) -> StepResult:
        """Deletes the Stripe customer (its invoices and charges stay in Stripe, as financial records)."""
        async with self._sessions() as session:
            customer_id = await repository.family_customer_id(session, family.parent_id)
        if customer_id is None:
            return StepResult(step=STEP_DELETE_STRIPE_CUSTOMER, where="stripe", note="no Stripe customer")
        try:
            await self._stripe.v1.customers.delete_async(customer_id)
        except stripe.InvalidRequestError as error:
            if error.http_status != 404:
                raise
            return StepResult(step=STEP_DELETE_STRIPE_CUSTOMER, where="stripe", note="deleted already")
        return StepResult(step=STEP_DELETE_STRIPE_CUSTOMER, where="stripe", count=1)

    @activity.defn(name="erasure_remove_login")
    async def remove_login(self, family: FamilyRef) -> StepResult:
        async with transaction(self._sessions) as session:
            user = await repository.family_user(session, family.parent_id)
            removed = user is not None and await self._identity.account_deleted(session, user)
        provider = "supabase" if self._settings.supabase_url else "builtin"
        return StepResult(step=STEP_REMOVE_LOGIN, where=f"identity:{provider}", count=int(removed))

    @activity.defn(name="erasure_destroy_payload_keys")
    async def destroy_payload_keys(self, family: FamilyRef) -> StepResult:
        """Destroys the family's payload keys, so its workflow histories (running or closed) can no longer be read."""
        async with transaction(self._sessions) as session:
            destroyed = await destroy_family_keys(session, family.parent_id)
        # This process forgets its copies at once; the others' caches let go within the key cache's lifetime.
        codec = self._temporal.data_converter.payload_codec
        if isinstance(codec, EncryptionCodec) and codec.keyring is not None:
            codec.keyring.forget_family(family.parent_id)
        return StepResult(step=STEP_DESTROY_PAYLOAD_KEYS, where="payload_keys", count=destroyed)

    @activity.defn(name="erasure_write_report")
    async def write_report(self, report: WriteReport) -> ErasureReport:
        """Stores the first run's report (a later run, having changed nothing, answers with it) and audits it."""
        request = report.request
        async with transaction(self._sessions) as session:
            inserted = await session.scalar(
                insert(ErasureReportRow)
                .values(
                    parent_id=request.parent_id,
                    workflow_id=report.workflow_id,
                    requested_by=request.requested_by,
                    steps=[step.model_dump(mode="json") for step in report.steps],
                    completed_at=datetime.now(UTC),
                )
                .on_conflict_do_nothing(index_elements=["parent_id"])
                .returning(col(ErasureReportRow.parent_id))
            )
            if inserted is not None:
                # Counts by step only: the audit row must not keep what it erased.
                await record_audit(
                    session,
                    actor_user_id=request.requested_by,
                    actor_role=request.requested_role,
                    action="erase",
                    entity_type="parent",
                    entity_id=request.parent_id,
                    after={step.step: step.count for step in report.steps},
                )
            row = await session.get(ErasureReportRow, request.parent_id)
            assert row is not None
            return stored_report(row)

    # --- retention ----------------------------------------------------------------------------------------------

    @activity.defn(name="retention_cutoffs")
    async def retention_cutoffs(self, request: RetentionRequest) -> RetentionCutoffs:
        settings, as_of = self._settings, request.as_of or datetime.now(UTC)
        return RetentionCutoffs(
            as_of=as_of,
            closed_family_before=as_of - timedelta(days=DAYS_PER_YEAR * settings.retention_closed_family_years),
            audit_before=as_of - timedelta(days=DAYS_PER_YEAR * settings.retention_audit_years),
            webhook_payload_before=as_of - timedelta(days=settings.retention_webhook_payload_days),
        )

    @activity.defn(name="retention_closed_families")
    async def closed_families(self, cutoffs: RetentionCutoffs) -> ClosedFamilies:
        async with self._sessions() as session:
            ids = await repository.closed_families(session, cutoffs.closed_family_before, CLOSED_FAMILIES_PER_RUN)
        return ClosedFamilies(parent_ids=ids)

    @activity.defn(name="retention_delete_audit_rows")
    async def delete_audit_rows(self, cutoffs: RetentionCutoffs) -> int:
        async with transaction(self._sessions) as session:
            return await repository.delete_old_audit_rows(session, cutoffs.audit_before)

    @activity.defn(name="retention_blank_webhook_payloads")
    async def blank_webhook_payloads(self, cutoffs: RetentionCutoffs) -> int:
        async with transaction(self._sessions) as session:
            return await repository.blank_old_webhook_payloads(session, cutoffs.webhook_payload_before)

    @activity.defn(name="retention_set_namespace_retention")
    async def set_namespace_retention(self, _: RetentionRequest) -> str:
        """Sets how long Temporal keeps closed histories (``temporal operator namespace update --retention``)."""
        retention = self._settings.temporal_namespace_retention
        if retention is None:
            return ""
        namespace, service = self._temporal.namespace, self._temporal.workflow_service
        described = await service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
        if described.config.workflow_execution_retention_ttl.ToTimedelta() == retention:
            return f"{namespace}: {retention} (unchanged)"
        config = NamespaceConfig()
        config.workflow_execution_retention_ttl.FromTimedelta(retention)
        try:
            await service.update_namespace(UpdateNamespaceRequest(namespace=namespace, config=config))
        except RPCError as error:
            # Temporal Cloud sets retention in its own console or API, not through a worker's credentials.
            if error.status not in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
                raise
            activity.logger.warning("the namespace's retention cannot be set from here: %s", error.message)
            return f"{namespace}: not permitted (set it where the namespace is managed)"
        return f"{namespace}: {retention}"


def stored_report(row: ErasureReportRow) -> ErasureReport:
    return ErasureReport(
        parent_id=row.parent_id,
        workflow_id=row.workflow_id,
        steps=[StepResult.model_validate(step) for step in row.steps],
        completed_at=row.completed_at,
    )
