"""School-wide settings an admin can change at run time (the environment holds the deploy-time ones)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from models.base import created_at_field


class SystemSetting(SQLModel, table=True):
    __tablename__ = "system_settings"

    key: str = Field(primary_key=True, max_length=100)
    value: Any = Field(sa_type=JSONB, nullable=False)
    description: str = Field(default="", max_length=500)
    updated_at: datetime = created_at_field()
