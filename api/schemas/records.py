"""Response bodies for read-only records: communications, the audit log, invoices and payments."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from api.schemas.common import ResponseModel


class CommunicationOut(ResponseModel):
    id: uuid.UUID
    template: str
    recipient: str
    subject: str
    status: str
    parent_id: uuid.UUID | None
    teacher_id: uuid.UUID | None
    enrollment_id: uuid.UUID | None
    attempts: int
    sent_at: datetime | None
    created_at: datetime


class AuditEntryOut(ResponseModel):
    id: uuid.UUID
    occurred_at: datetime
    actor_user_id: uuid.UUID | None
    actor_role: str
    action: str
    entity_type: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None


class InvoiceOut(ResponseModel):
    id: uuid.UUID
    billing_account_id: uuid.UUID
    subscription_id: uuid.UUID | None
    stripe_invoice_id: str
    status: str
    amount_due_minor: int
    amount_paid_minor: int
    currency: str
    period_start: datetime | None
    period_end: datetime | None
    first_failed_at: datetime | None
    attempt_count: int
    paid_at: datetime | None
    created_at: datetime


class PaymentOut(ResponseModel):
    id: uuid.UUID
    billing_account_id: uuid.UUID
    invoice_id: uuid.UUID | None
    stripe_charge_id: str | None
    status: str
    amount_minor: int
    fee_minor: int
    amount_refunded_minor: int
    currency: str
    failure_code: str | None
    decline_code: str | None
    receipt_sent_at: datetime | None
    created_at: datetime
