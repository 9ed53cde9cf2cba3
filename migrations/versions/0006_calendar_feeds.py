"""Calendar feeds: a family's or a teacher's secret, revocable .ics URL (only the secret's hash is stored)

Revision ID: 0006_feeds
Revises: 0005

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006_feeds"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=True),
        sa.Column("teacher_id", sa.Uuid(), nullable=True),
        sa.Column("secret_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("(parent_id IS NULL) <> (teacher_id IS NULL)", name="ck_calendar_feeds_one_owner"),
        sa.ForeignKeyConstraint(["parent_id"], ["parents.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["teacher_id"], ["teachers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_index(op.f("ix_calendar_feeds_parent_id"), "calendar_feeds", ["parent_id"], unique=False)
    op.create_index(op.f("ix_calendar_feeds_teacher_id"), "calendar_feeds", ["teacher_id"], unique=False)
    op.create_index(
        "uq_calendar_feeds_parent_active",
        "calendar_feeds",
        ["parent_id"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )
    op.create_index(
        "uq_calendar_feeds_teacher_active",
        "calendar_feeds",
        ["teacher_id"],
        unique=True,
        postgresql_where=sa.text("revoked_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("uq_calendar_feeds_teacher_active", table_name="calendar_feeds")
    op.drop_index("uq_calendar_feeds_parent_active", table_name="calendar_feeds")
    op.drop_index(op.f("ix_calendar_feeds_teacher_id"), table_name="calendar_feeds")
    op.drop_index(op.f("ix_calendar_feeds_parent_id"), table_name="calendar_feeds")
    op.drop_table("calendar_feeds")
