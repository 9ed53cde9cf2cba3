"""The benchmark's baseline: a workflow of the enrollment's shape with no-op steps.

The enrollment runs a Stripe check (regular activity) alongside a database check (local activity), then three
database steps (local activities) up to ``demo_scheduled``, upserting a search attribute at each state, then
sends two welcome emails at once (regular activities). The baseline does the same with bodies that do nothing,
so the difference is our own work. It returns when its ``demo_scheduled`` step ran (epoch seconds).
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from core.temporal import ENROLLMENT_STATE

BASELINE_WORKFLOW = "BaselineEnrollmentShape"
STATES = ("validated", "account_created", "teacher_assigned", "demo_scheduled")
RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_interval=timedelta(seconds=30))
TIMEOUT = timedelta(seconds=15)


class NoOp(BaseModel):
    step: str


@activity.defn(name="baseline_noop")
async def noop(request: NoOp) -> float:
    return time.time()


@workflow.defn(name=BASELINE_WORKFLOW)
class BaselineEnrollmentShape:
    @workflow.run
    async def run(self, request: NoOp) -> float:
        await asyncio.gather(
            workflow.execute_local_activity(
                noop, NoOp(step="validate"), start_to_close_timeout=TIMEOUT, retry_policy=RETRY
            ),
            workflow.execute_activity(noop, NoOp(step="stripe"), start_to_close_timeout=TIMEOUT, retry_policy=RETRY),
        )
        workflow.upsert_search_attributes([ENROLLMENT_STATE.value_set(STATES[0])])
        reached = 0.0
        for state in STATES[1:]:
            reached = await workflow.execute_local_activity(
                noop, NoOp(step=state), start_to_close_timeout=TIMEOUT, retry_policy=RETRY
            )
            workflow.upsert_search_attributes([ENROLLMENT_STATE.value_set(state)])
        await asyncio.gather(
            *(
                workflow.execute_activity(noop, NoOp(step=email), start_to_close_timeout=TIMEOUT, retry_policy=RETRY)
                for email in ("welcome-parent", "welcome-teacher")
            )
        )
        return reached
