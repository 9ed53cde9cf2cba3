"""Missed-webhook recovery, run by a Temporal Schedule (settings.webhook_catchup_cron).

localstripe never retries a failed delivery and Stripe gives up after three days, so every few minutes this reads
Stripe's event list since a stored checkpoint and feeds what the inbox lacks through the webhook's own path.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.stripe_inbox import CatchUpRequest, CatchUpResult, StripeInboxActivities
    from core.settings import Settings

STRIPE_CATCHUP_WORKFLOW = "StripeCatchupWorkflow"
STRIPE_CATCHUP_SCHEDULE_ID = "stripe-events-catchup"


@workflow.defn(name=STRIPE_CATCHUP_WORKFLOW)
class StripeCatchupWorkflow:
    @workflow.run
    async def run(self, request: CatchUpRequest) -> CatchUpResult:
        return await workflow.execute_activity_method(
            StripeInboxActivities.catch_up,
            request,
            start_to_close_timeout=timedelta(minutes=5),
            heartbeat_timeout=timedelta(minutes=1),
            retry_policy=RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=5),
        )


async def ensure_catchup_schedule(client: Client, settings: Settings) -> None:
    """Creates the catch-up schedule, or brings an existing one in line with the settings."""
    schedule = Schedule(
        action=ScheduleActionStartWorkflow(
            STRIPE_CATCHUP_WORKFLOW,
            CatchUpRequest(),
            id=STRIPE_CATCHUP_SCHEDULE_ID,
            task_queue=settings.task_queue,
        ),
        spec=ScheduleSpec(cron_expressions=[settings.webhook_catchup_cron], time_zone_name=settings.school_timezone),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=settings.schedule_catchup_window),
    )
    try:
        await client.create_schedule(STRIPE_CATCHUP_SCHEDULE_ID, schedule)
    except ScheduleAlreadyRunningError:

        def replace(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(STRIPE_CATCHUP_SCHEDULE_ID).update(replace)
