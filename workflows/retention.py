"""RetentionWorkflow (its Schedule runs it daily): applies the school's retention settings. Closed families past
their age are erased through FamilyErasureWorkflow (as children, one at a time), old audit rows are deleted
(except the legal hold: money records' and erasures' rows), old webhook payloads are blanked, and the namespace's
retention is set so Temporal deletes closed histories after ``temporal_namespace_retention``."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError

with workflow.unsafe.imports_passed_through():
    from activities.erasure import ErasureActivities
    from core.contracts.erasure import FAMILY_ERASURE_WORKFLOW, ErasureReport, ErasureRequest, erasure_workflow_id
    from core.contracts.retention import RETENTION_WORKFLOW, RetentionReport, RetentionRequest

RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10)
STEP_TIMEOUT = timedelta(minutes=5)


@workflow.defn(name=RETENTION_WORKFLOW)
class RetentionWorkflow:
    @workflow.run
    async def run(self, request: RetentionRequest) -> RetentionReport:
        if request.as_of is None:
            request = RetentionRequest(as_of=workflow.now())
        cutoffs = await workflow.execute_activity_method(
            ErasureActivities.retention_cutoffs, request, start_to_close_timeout=STEP_TIMEOUT, retry_policy=RETRY
        )
        closed = await workflow.execute_activity_method(
            ErasureActivities.closed_families, cutoffs, start_to_close_timeout=STEP_TIMEOUT, retry_policy=RETRY
        )
        erased = 0
        for parent_id in closed.parent_ids:
            try:
                await workflow.execute_child_workflow(
                    FAMILY_ERASURE_WORKFLOW,
                    ErasureRequest(parent_id=parent_id, requested_role="system"),
                    id=erasure_workflow_id(parent_id),
                    result_type=ErasureReport,
                    id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
                )
                erased += 1
            except WorkflowAlreadyStartedError:
                workflow.logger.info("an erasure of a closed family is already running")
        audit = await workflow.execute_activity_method(
            ErasureActivities.delete_audit_rows, cutoffs, start_to_close_timeout=STEP_TIMEOUT, retry_policy=RETRY
        )
        webhooks = await workflow.execute_activity_method(
            ErasureActivities.blank_webhook_payloads,
            cutoffs,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=RETRY,
        )
        namespace = await workflow.execute_activity_method(
            ErasureActivities.set_namespace_retention,
            request,
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=RETRY,
        )
        return RetentionReport(
            families_erased=erased,
            audit_rows_deleted=audit,
            webhook_payloads_blanked=webhooks,
            namespace_retention=namespace,
        )
