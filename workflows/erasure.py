"""FamilyErasureWorkflow (``erasure-{parent}``): a family's erasure reaching every copy of its data, one step per
activity, each retried until done and visible in the Temporal UI, in this order: close the family's workflows
(billing last), blank its rows, redact its audit snapshots and its customer's webhook payloads, delete the Stripe
customer, remove the login account, destroy its payload keys; then store and return the report.

Every step is idempotent, so running the workflow again changes nothing and answers with the first report.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.erasure import ErasureActivities
    from core.contracts.erasure import (
        FAMILY_ERASURE_WORKFLOW,
        QUERY_PROGRESS,
        ErasureReport,
        ErasureRequest,
        FamilyRef,
        StepResult,
        WriteReport,
    )

# Retried until done: an erasure the school promised must not stop at an outage.
UNTIL_DONE = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=5))
STEP_TIMEOUT = timedelta(minutes=2)


@workflow.defn(name=FAMILY_ERASURE_WORKFLOW)
class FamilyErasureWorkflow:
    def __init__(self) -> None:
        self._steps: list[StepResult] = []

    @workflow.query(name=QUERY_PROGRESS)
    def progress(self) -> list[StepResult]:
        return self._steps

    @workflow.run
    async def run(self, request: ErasureRequest) -> ErasureReport:
        family = FamilyRef(parent_id=request.parent_id)
        workflows = await workflow.execute_activity_method(
            ErasureActivities.family_workflows, family, start_to_close_timeout=STEP_TIMEOUT, retry_policy=UNTIL_DONE
        )
        self._steps.append(
            await workflow.execute_activity_method(
                ErasureActivities.close_workflows,
                workflows,
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=UNTIL_DONE,
            )
        )
        workflow.set_current_details("closing the family's workflows")
        for step in (
            ErasureActivities.blank_rows,
            ErasureActivities.redact_audit,
            ErasureActivities.redact_webhooks,
            ErasureActivities.delete_stripe_customer,
            ErasureActivities.remove_login,
            ErasureActivities.destroy_payload_keys,
        ):
            workflow.set_current_details(f"step {len(self._steps) + 1}: {step.__name__}")
            self._steps.append(
                await workflow.execute_activity_method(
                    step, family, start_to_close_timeout=STEP_TIMEOUT, retry_policy=UNTIL_DONE
                )
            )
        workflow.set_current_details("writing the erasure report")
        return await workflow.execute_activity_method(
            ErasureActivities.write_report,
            WriteReport(request=request, workflow_id=workflow.info().workflow_id, steps=self._steps),
            start_to_close_timeout=STEP_TIMEOUT,
            retry_policy=UNTIL_DONE,
        )
