"""The messages between enrollment, billing and dunning: the contract each side codes against.

Workflows are addressed by name (strings below), so no capability imports another's workflow module.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel

FAMILY_BILLING_WORKFLOW = "FamilyBillingWorkflow"
SIGNAL_STUDENT_STARTED = "student_started"
SIGNAL_STUDENT_STOPPED = "student_stopped"


class FamilyBillingInput(BaseModel):
    """Starts (or continues-as-new) one family's billing workflow; the state it carries is billing's own."""

    parent_id: uuid.UUID


class StudentStarted(BaseModel):
    """Sent by the enrollment workflow when a demo's outcome is `continue`: start charging for lessons."""

    enrollment_id: uuid.UUID
    parent_id: uuid.UUID
    student_id: uuid.UUID
    teacher_id: uuid.UUID
    instrument: str
    lesson_minutes: int
    billing_interval: str  # week | month
    stripe_payment_method_id: str
    first_regular_lesson_at: datetime  # the trial ends here, so the demo is free


class StudentStopped(BaseModel):
    """Sent when an active enrollment is cancelled: stop charging for that student's lessons."""

    enrollment_id: uuid.UUID
    parent_id: uuid.UUID
    student_id: uuid.UUID
    reason: str
