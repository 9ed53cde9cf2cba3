"""Missed-webhook recovery, run by a Temporal Schedule (settings.webhook_catchup_cron, see workers/schedules.py).

localstripe never retries a failed delivery and Stripe gives up after three days, so every few minutes this reads
Stripe's event list since a stored checkpoint and feeds what the inbox lacks through the webhook's own path. It
also recognizes the revenue of lessons completed since its last run (the ledger's lesson-completed entries).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities
    from activities.stripe_inbox import StripeInboxActivities
    from core.contracts.scheduled import STRIPE_CATCHUP_WORKFLOW, CatchUpRequest, CatchUpResult, RecognizeLessons

RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5)


@workflow.defn(name=STRIPE_CATCHUP_WORKFLOW)
class StripeCatchupWorkflow:
    @workflow.run
    async def run(self, request: CatchUpRequest) -> CatchUpResult:
        result = await workflow.execute_activity_method(
            StripeInboxActivities.catch_up,
            request,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RETRY,
        )
        result.lessons_recognized = await workflow.execute_activity_method(
            BillingActivities.recognize_lessons,
            RecognizeLessons(),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        return result
