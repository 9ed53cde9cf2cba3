"""A step that fails for good undoes every step before it: no capacity held, no lesson booked, no active
student; the family's account stays. A failing undo is surfaced (failed workflow, reason on the row)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError

from core.db import SessionFactory
from core.temporal import enrollment_workflow_id
from models import Parent, Role
from tests.enrollment.conftest import EnrollmentWorker
from tests.enrollment.helpers import (
    count_rows,
    enroll,
    enrollment_row,
    lessons_of,
    student_of,
    teacher_by_email,
    wait_for_state,
)

MAYA = "maya.lindqvist@cedarheights.example"


def failing(name: str) -> Any:
    @activity.defn(name=name)
    async def fail(request: dict) -> None:
        raise ApplicationError(f"injected failure in {name}", non_retryable=True)

    return fail


# (activity that fails, whether the teacher's outcome is needed to reach it, whether the family exists by then)
STEPS = [
    ("check_payment_method", False, False),
    ("enrollment_validate", False, False),
    ("enrollment_create_account", False, False),
    ("enrollment_assign_teacher", False, True),
    ("enrollment_book_demo", False, True),
    ("enrollment_book_regular_lessons", True, True),
    ("enrollment_start_billing", True, True),
]


@pytest.mark.parametrize(("step", "needs_outcome", "family_made"), STEPS, ids=[s[0] for s in STEPS])
async def test_a_failure_at_each_step_compensates_fully(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    auth_headers,
    step: str,
    needs_outcome: bool,
    family_made: bool,
) -> None:
    async with enrollment_worker(replace=[failing(step)]):
        enrollment_id = await enroll(api)
        if needs_outcome:
            await wait_for_state(api, enrollment_id, "demo_scheduled")
            answer = await api.post(
                f"/api/v1/enrollments/{enrollment_id}/demo-outcome",
                json={"outcome": "continue"},
                headers=await auth_headers(Role.admin),
            )
            assert answer.status_code == 200, answer.text
        failed = await wait_for_state(api, enrollment_id, "failed")
    assert failed["failure_reason"] == f"injected failure in {step}"
    assert (await teacher_by_email(sessions, MAYA)).active_students == 0
    assert await lessons_of(sessions, enrollment_id, "scheduled") == []
    student = await student_of(sessions, enrollment_id)
    assert student is None or not student.is_active
    row = await enrollment_row(sessions, enrollment_id)
    assert row.state == "failed"
    assert row.teacher_id is None
    # The family's account is never removed: a sibling or a later enrollment reuses it.
    assert (await count_rows(sessions, Parent, Parent.id == row.parent_id) == 1) is family_made


async def test_a_failing_compensation_is_surfaced_not_swallowed(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    temporal_client: Client,
) -> None:
    async with enrollment_worker(replace=[failing("enrollment_book_demo"), failing("enrollment_release_teacher")]):
        enrollment_id = await enroll(api)
        handle = temporal_client.get_workflow_handle(enrollment_workflow_id(uuid.UUID(enrollment_id)))
        with pytest.raises(Exception, match="Workflow execution failed"):
            await handle.result()
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED
    row = await enrollment_row(sessions, enrollment_id)
    assert row.state == "failed"
    assert row.failure_reason is not None
    assert "compensation failed (release_teacher: injected failure in enrollment_release_teacher)" in row.failure_reason
    # What could not be undone is visible, not hidden: the place is still held.
    assert (await teacher_by_email(sessions, MAYA)).active_students == 1
