"""Payload keys: per-family (and per-enrollment) data keys sealing Temporal payloads

Revision ID: 0015_keys
Revises: 0014_retention

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_keys"
down_revision: str | Sequence[str] | None = "0014_retention"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payload_keys",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("owner_kind", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("master_key_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("destroyed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("owner_kind IN ('family', 'enrollment')", name="ck_payload_keys_owner_kind"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_payload_keys_parent_id", "payload_keys", ["parent_id"])
    op.create_index(
        "uq_payload_keys_live_owner",
        "payload_keys",
        ["owner_kind", "owner_id"],
        unique=True,
        postgresql_where=sa.text("destroyed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_payload_keys_live_owner", table_name="payload_keys")
    op.drop_index("ix_payload_keys_parent_id", table_name="payload_keys")
    op.drop_table("payload_keys")
