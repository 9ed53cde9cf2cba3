"""Request and response bodies of billing set-up for imported families (``api/routes/billing_setup.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import Field

from api.schemas.common import RequestModel, ResponseModel
from api.schemas.enrollment import PaymentMethodId


class AwaitingOut(ResponseModel):
    enrollment_id: uuid.UUID
    student_id: uuid.UUID | None
    instrument: str
    billing_interval: str
    billing_from: datetime | None = Field(
        description="where billing starts once the card is given: the next lesson period holding a lesson "
        "(null: its lessons left all fall in the period in progress, so nothing is billed)"
    )


class BillingSetupOut(ResponseModel):
    parent_id: uuid.UUID
    imported_enrollments: int
    done: bool = Field(description="every imported enrollment of the family has been handed to billing")
    invited_at: datetime | None
    awaiting: list[AwaitingOut]


class InviteOut(ResponseModel):
    parent_id: uuid.UUID
    communication_id: uuid.UUID
    already_sent: bool = Field(description="the family was invited before: no second email")
    suppressed: bool


class BillingSetupCard(RequestModel):
    payment_method_id: PaymentMethodId


class HandedOut(ResponseModel):
    parent_id: uuid.UUID
    started: list[AwaitingOut] = Field(description="enrollments handed to billing by this request")
    nothing_to_bill: list[uuid.UUID] = Field(description="enrollments whose lessons left are all in this period")
