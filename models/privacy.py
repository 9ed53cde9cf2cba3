"""PIPEDA: consents a family gave or withdrew, and the audit log of who did or saw what."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from models.base import created_at_field, id_field, one_of, tz_field


class ConsentKind(StrEnum):
    privacy_policy = "privacy_policy"
    marketing_email = "marketing_email"


class Consent(SQLModel, table=True):
    __tablename__ = "consents"
    __table_args__ = (one_of("kind", ConsentKind, "ck_consents_kind"),)

    id: uuid.UUID = id_field()
    parent_id: uuid.UUID = Field(foreign_key="parents.id", index=True)
    kind: str = Field(max_length=32)
    granted: bool
    policy_version: str = Field(default="2026-01", max_length=32)
    source: str = Field(default="enrollment_form", max_length=64)
    granted_at: datetime = created_at_field()
    withdrawn_at: datetime | None = tz_field(nullable=True)


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity_type", "entity_id"),)

    id: uuid.UUID = id_field()
    occurred_at: datetime = created_at_field()
    actor_user_id: uuid.UUID | None = Field(default=None, index=True)
    actor_role: str = Field(max_length=16)  # admin | teacher | parent | system | public
    action: str = Field(max_length=64)  # create | update | delete | read | signal …
    entity_type: str = Field(max_length=64)
    entity_id: str | None = Field(default=None, max_length=64)
    before: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    after: dict[str, Any] | None = Field(default=None, sa_type=JSONB)
    request_id: str | None = Field(default=None, max_length=64)


class ErasureReport(SQLModel, table=True):
    """What a family's erasure erased, where, and how many of each (ids and counts only, never the data)."""

    __tablename__ = "erasure_reports"

    parent_id: uuid.UUID = Field(primary_key=True, foreign_key="parents.id")
    workflow_id: str = Field(max_length=100)
    requested_by: uuid.UUID | None = Field(default=None)
    steps: list[dict[str, Any]] = Field(default_factory=list, sa_type=JSONB, nullable=False)
    completed_at: datetime = created_at_field()
