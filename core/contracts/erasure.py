"""FamilyErasureWorkflow's contract (one per family, ``erasure-{parent}``): inputs, each step's result and
the report. Only ids and counts travel through these workflows' histories, never what was erased."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

FAMILY_ERASURE_WORKFLOW = "FamilyErasureWorkflow"
QUERY_PROGRESS = "progress"

# The steps, in the order the workflow runs them; each is one activity, retried until done.
STEP_CLOSE_WORKFLOWS = "close_workflows"
STEP_BLANK_ROWS = "blank_rows"
STEP_REDACT_AUDIT = "redact_audit"
STEP_REDACT_WEBHOOKS = "redact_webhooks"
STEP_DELETE_STRIPE_CUSTOMER = "delete_stripe_customer"
STEP_REMOVE_LOGIN = "remove_login"
STEP_DESTROY_PAYLOAD_KEYS = "destroy_payload_keys"
STEPS = (
    STEP_CLOSE_WORKFLOWS,
    STEP_BLANK_ROWS,
    STEP_REDACT_AUDIT,
    STEP_REDACT_WEBHOOKS,
    STEP_DELETE_STRIPE_CUSTOMER,
    STEP_REMOVE_LOGIN,
    STEP_DESTROY_PAYLOAD_KEYS,
)

# What the closed workflows' histories show as the reason: it names no person.
CLOSE_REASON = "family erased (PIPEDA erasure request)"


def erasure_workflow_id(parent_id: uuid.UUID | str) -> str:
    return f"erasure-{parent_id}"


class ErasureRequest(BaseModel):
    parent_id: uuid.UUID
    # Who asked (an admin's user id; None when retention erases a closed family).
    requested_by: uuid.UUID | None = None
    requested_role: str = "admin"


class FamilyRef(BaseModel):
    parent_id: uuid.UUID


class FamilyWorkflows(BaseModel):
    """The family's workflow ids, from its rows (enrollments, billing account, dunning), billing last."""

    parent_id: uuid.UUID
    workflow_ids: list[str]


class StepResult(BaseModel):
    """One step's outcome: where it erased, how many items, and a note (ids and counts only)."""

    step: str
    where: str
    count: int = 0
    note: str = ""


class WriteReport(BaseModel):
    request: ErasureRequest
    workflow_id: str
    steps: list[StepResult]


class ErasureReport(BaseModel):
    parent_id: uuid.UUID
    workflow_id: str
    steps: list[StepResult]
    completed_at: datetime
