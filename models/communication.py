"""Every email Cedar sends, recorded once by a dedup key so a retried activity never sends it twice."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from models.base import created_at_field, id_field, one_of, tz_field


class CommunicationStatus(StrEnum):
    pending = "pending"
    sent = "sent"
    failed = "failed"
    # Not sent on purpose: the address had its day's cap of public-action emails (``core.mail_cap``).
    suppressed = "suppressed"


class Communication(SQLModel, table=True):
    __tablename__ = "communications"
    __table_args__ = (
        one_of("status", CommunicationStatus, "ck_communications_status"),
        # The daily cap on public emails counts one address's recent rows on every send.
        Index("ix_communications_recipient_created_at", "recipient", "created_at"),
    )

    id: uuid.UUID = id_field()
    dedup_key: str = Field(max_length=255, unique=True)
    template: str = Field(max_length=64, index=True)
    recipient: str = Field(max_length=254, index=True)
    subject: str = Field(max_length=300)
    status: str = Field(default=CommunicationStatus.pending, max_length=16)
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="parents.id", index=True)
    teacher_id: uuid.UUID | None = Field(default=None, foreign_key="teachers.id", index=True)
    enrollment_id: uuid.UUID | None = Field(default=None, foreign_key="enrollments.id", index=True)
    message_id: str | None = Field(default=None, max_length=255)
    attempts: int = 0
    error: str | None = Field(default=None, max_length=2000)
    sent_at: datetime | None = tz_field(nullable=True)
    created_at: datetime = created_at_field()
