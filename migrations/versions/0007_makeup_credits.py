"""Make-up credits: one per lesson cancelled with a credit (or granted by the office), used at most once

Revision ID: 0006_credits
Revises: 0006_feeds

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006_credits"
down_revision: str | Sequence[str] | None = "0006_feeds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "makeup_credits",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=False),
        sa.Column("student_id", sa.Uuid(), nullable=False),
        sa.Column("teacher_id", sa.Uuid(), nullable=False),
        sa.Column("instrument", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("lesson_minutes", sa.Integer(), nullable=False),
        sa.Column("origin_lesson_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_lesson_id", sa.Uuid(), nullable=True),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminder_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("status IN ('available', 'used', 'expired', 'void')", name="ck_makeup_credits_status"),
        sa.CheckConstraint("(status = 'used') = (used_lesson_id IS NOT NULL)", name="ck_makeup_credits_used_lesson"),
        sa.CheckConstraint("lesson_minutes > 0", name="ck_makeup_credits_minutes"),
        sa.ForeignKeyConstraint(["parent_id"], ["parents.id"]),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"]),
        sa.ForeignKeyConstraint(["teacher_id"], ["teachers.id"]),
        sa.ForeignKeyConstraint(["origin_lesson_id"], ["lessons.id"]),
        sa.ForeignKeyConstraint(["used_lesson_id"], ["lessons.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("origin_lesson_id"),
        sa.UniqueConstraint("used_lesson_id"),
    )
    op.create_index(op.f("ix_makeup_credits_parent_id"), "makeup_credits", ["parent_id"], unique=False)
    op.create_index(op.f("ix_makeup_credits_student_id"), "makeup_credits", ["student_id"], unique=False)
    op.create_index(op.f("ix_makeup_credits_teacher_id"), "makeup_credits", ["teacher_id"], unique=False)
    op.create_index(op.f("ix_makeup_credits_status"), "makeup_credits", ["status"], unique=False)


def downgrade() -> None:
    op.drop_table("makeup_credits")
