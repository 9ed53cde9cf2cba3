"""Rate-limit counters with a window length of their own (hourly limits beside login's minute)

Revision ID: 0004
Revises: 0003

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("rate_limit_buckets", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    # Every counter so far was a one-minute window.
    op.execute("UPDATE rate_limit_buckets SET expires_at = window_start + interval '1 minute'")
    op.alter_column("rate_limit_buckets", "expires_at", nullable=False)
    op.create_index(op.f("ix_rate_limit_buckets_expires_at"), "rate_limit_buckets", ["expires_at"], unique=False)
    op.drop_index(op.f("ix_rate_limit_buckets_window_start"), table_name="rate_limit_buckets")


def downgrade() -> None:
    op.create_index(op.f("ix_rate_limit_buckets_window_start"), "rate_limit_buckets", ["window_start"], unique=False)
    op.drop_index(op.f("ix_rate_limit_buckets_expires_at"), table_name="rate_limit_buckets")
    op.drop_column("rate_limit_buckets", "expires_at")
