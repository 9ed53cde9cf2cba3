"""Data keys that seal a family's (or an enrollment's) Temporal payloads; destroying one shreds those payloads."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, LargeBinary, text
from sqlmodel import Field, SQLModel

from models.base import created_at_field, id_field, one_of, tz_field


class PayloadKeyOwner(StrEnum):
    family = "family"  # billing, dunning and re-enrollment workflows: keyed by the parent
    enrollment = "enrollment"  # an enrollment's workflows, which start before the family exists


class PayloadKey(SQLModel, table=True):
    __tablename__ = "payload_keys"
    __table_args__ = (
        one_of("owner_kind", PayloadKeyOwner, "ck_payload_keys_owner_kind"),
        # One live key per owner; a destroyed key stays as a tombstone.
        Index(
            "uq_payload_keys_live_owner",
            "owner_kind",
            "owner_id",
            unique=True,
            postgresql_where=text("destroyed_at IS NULL"),
        ),
    )

    id: uuid.UUID = id_field()
    owner_kind: str = Field(max_length=16)
    owner_id: uuid.UUID
    # The family the key belongs to: set at once for a family's key, and for an enrollment's once it is known.
    parent_id: uuid.UUID | None = Field(default=None, index=True)
    # The data key sealed under master key ``master_key_id``; emptied when the key is destroyed.
    wrapped_key: bytes = Field(sa_type=LargeBinary)
    master_key_id: str = Field(max_length=64)
    created_at: datetime = created_at_field()
    destroyed_at: datetime | None = tz_field(nullable=True)
