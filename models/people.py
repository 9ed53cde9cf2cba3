"""Families: parents (guardians) and their children."""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import CheckConstraint
from sqlmodel import Field, SQLModel

from models.base import created_at_field, id_field, tz_field


class Parent(SQLModel, table=True):
    """A parent or guardian; one parent account per family, shared by siblings."""

    __tablename__ = "parents"
    __table_args__ = (CheckConstraint("email = lower(email)", name="ck_parents_email_lowercase"),)

    id: uuid.UUID = id_field()
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", unique=True)
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    email: str = Field(max_length=254, unique=True, index=True)
    phone: str = Field(max_length=32)
    created_at: datetime = created_at_field()
    # Set when a family asks to be erased (PIPEDA): personal fields are blanked, money records are kept.
    erased_at: datetime | None = tz_field(nullable=True)


class Student(SQLModel, table=True):
    __tablename__ = "students"

    id: uuid.UUID = id_field()
    parent_id: uuid.UUID = Field(foreign_key="parents.id", index=True)
    first_name: str = Field(max_length=100)
    last_name: str = Field(max_length=100)
    date_of_birth: date
    # The student's main instrument; each instrument they learn is an enrollment.
    instrument: str | None = Field(default=None, foreign_key="instruments.code", max_length=32)
    is_active: bool = True
    created_at: datetime = created_at_field()
