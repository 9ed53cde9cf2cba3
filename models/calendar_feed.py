"""Calendar feeds: the secret, revocable ``.ics`` URL of a family's or a teacher's lessons."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field, SQLModel

from models.base import created_at_field, id_field, tz_field


class CalendarFeed(SQLModel, table=True):
    """One feed of one family (``parent_id``) or one teacher (``teacher_id``).

    Only the SHA-256 of the URL's secret is stored. Revoking sets ``revoked_at``: the URL answers 404 from then on.
    Each owner has at most one feed not revoked (the partial unique indexes).
    """

    __tablename__ = "calendar_feeds"
    __table_args__ = (
        CheckConstraint("(parent_id IS NULL) <> (teacher_id IS NULL)", name="ck_calendar_feeds_one_owner"),
        Index("uq_calendar_feeds_parent_active", "parent_id", unique=True, postgresql_where=text("revoked_at IS NULL")),
        Index(
            "uq_calendar_feeds_teacher_active", "teacher_id", unique=True, postgresql_where=text("revoked_at IS NULL")
        ),
    )

    id: uuid.UUID = id_field()
    parent_id: uuid.UUID | None = Field(default=None, foreign_key="parents.id", index=True, ondelete="CASCADE")
    teacher_id: uuid.UUID | None = Field(default=None, foreign_key="teachers.id", index=True, ondelete="CASCADE")
    secret_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = created_at_field()
    revoked_at: datetime | None = tz_field(nullable=True)
