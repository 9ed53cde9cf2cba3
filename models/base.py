"""Shared column helpers for the SQLModel tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import CheckConstraint, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def id_field() -> Any:
    return Field(default_factory=new_id, primary_key=True)


def created_at_field() -> Any:
    return Field(default_factory=utcnow, sa_type=DateTime(timezone=True), nullable=False)


def tz_field(*, nullable: bool = False, index: bool = False) -> Any:
    """A timezone-aware timestamp column: every instant in Cedar carries its offset."""
    return Field(default=None, sa_type=DateTime(timezone=True), nullable=nullable, index=index)


def json_field(default_factory: Any = dict) -> Any:
    return Field(default_factory=default_factory, sa_type=JSONB, nullable=False)


def one_of(column: str, values: Iterable[str] | type[StrEnum], name: str) -> CheckConstraint:
    """A CHECK that keeps a text column within an enumeration, so bad states cannot be written by hand."""
    allowed = ", ".join(f"'{v.value if isinstance(v, StrEnum) else v}'" for v in values)
    return CheckConstraint(f"{column} IN ({allowed})", name=name)
