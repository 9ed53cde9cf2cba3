"""Who can log in: users, their refresh tokens and one-time links."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Index, text
from sqlmodel import Field, SQLModel

from models.base import created_at_field, id_field, one_of, tz_field


class Role(StrEnum):
    admin = "admin"
    teacher = "teacher"
    parent = "parent"


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        one_of("role", Role, "ck_users_role"),
        CheckConstraint("email = lower(email)", name="ck_users_email_lowercase"),
    )

    id: uuid.UUID = id_field()
    email: str = Field(max_length=254, unique=True, index=True)
    role: str = Field(max_length=16)
    # Empty for Supabase-managed users and for parents who have not set a password yet.
    password_hash: str | None = Field(default=None, max_length=255)
    external_id: str | None = Field(default=None, max_length=64, unique=True)
    is_active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = tz_field(nullable=True)
    created_at: datetime = created_at_field()
    updated_at: datetime = created_at_field()


class RefreshToken(SQLModel, table=True):
    __tablename__ = "refresh_tokens"

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True, ondelete="CASCADE")
    # Tokens rotate within a family; reusing a rotated token revokes the whole family.
    family_id: uuid.UUID = Field(index=True)
    token_hash: str = Field(max_length=128, unique=True)
    expires_at: datetime = tz_field()
    revoked_at: datetime | None = tz_field(nullable=True)
    replaced_by_id: uuid.UUID | None = None
    created_at: datetime = created_at_field()


class TokenPurpose(StrEnum):
    password_reset = "password_reset"  # noqa: S105 (a purpose's name, not a password)
    set_password = "set_password"  # noqa: S105


class OneTimeToken(SQLModel, table=True):
    __tablename__ = "one_time_tokens"
    __table_args__ = (
        one_of("purpose", TokenPurpose, "ck_one_time_tokens_purpose"),
        Index("ix_one_time_tokens_open", "user_id", "purpose", postgresql_where=text("used_at IS NULL")),
    )

    id: uuid.UUID = id_field()
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    purpose: str = Field(max_length=32)
    token_hash: str = Field(max_length=128, unique=True)
    expires_at: datetime = tz_field()
    used_at: datetime | None = tz_field(nullable=True)
    created_at: datetime = created_at_field()


class RateLimitBucket(SQLModel, table=True):
    """A fixed-window counter (login, reset and public enrollment attempts per IP, account or email), shared by every
    API process."""

    __tablename__ = "rate_limit_buckets"

    # "login:ip:<ip>" or "login:account:<sha256 of the email>": no personal data in clear.
    key: str = Field(max_length=128, primary_key=True)
    window_start: datetime = tz_field()
    # The end of the counter's window (windows differ per limit); ended windows are purged by it.
    expires_at: datetime = tz_field(index=True)
    hits: int = 0
