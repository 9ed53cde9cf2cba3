"""Closures after booking and teacher changes: a closure's lesson action and outcome, substitutions

Revision ID: 0012_teachers
Revises: 0011_reenroll

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012_teachers"
down_revision: str | Sequence[str] | None = "0011_reenroll"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "closures",
        sa.Column(
            "lesson_action",
            sqlmodel.sql.sqltypes.AutoString(length=8),
            nullable=False,
            server_default="cancel",
        ),
    )
    op.alter_column("closures", "lesson_action", server_default=None)
    op.add_column("closures", sa.Column("outcome", postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_check_constraint("ck_closures_lesson_action", "closures", "lesson_action IN ('cancel', 'move')")
    op.create_table(
        "substitutions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("regular_teacher_id", sa.Uuid(), nullable=False),
        sa.Column("substitute_teacher_id", sa.Uuid(), nullable=False),
        sa.Column("lesson_id", sa.Uuid(), nullable=True),
        sa.Column("from_date", sa.Date(), nullable=False),
        sa.Column("to_date", sa.Date(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("regular_teacher_id <> substitute_teacher_id", name="ck_substitutions_teachers"),
        sa.CheckConstraint("to_date >= from_date", name="ck_substitutions_order"),
        sa.ForeignKeyConstraint(["regular_teacher_id"], ["teachers.id"]),
        sa.ForeignKeyConstraint(["substitute_teacher_id"], ["teachers.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_substitutions_regular_teacher_id"), "substitutions", ["regular_teacher_id"])
    op.create_index(op.f("ix_substitutions_substitute_teacher_id"), "substitutions", ["substitute_teacher_id"])
    op.add_column("lessons", sa.Column("regular_teacher_id", sa.Uuid(), nullable=True))
    op.add_column("lessons", sa.Column("substitution_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(None, "lessons", "teachers", ["regular_teacher_id"], ["id"])
    op.create_foreign_key(None, "lessons", "substitutions", ["substitution_id"], ["id"])
    op.create_index(op.f("ix_lessons_substitution_id"), "lessons", ["substitution_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_lessons_substitution_id"), table_name="lessons")
    op.drop_column("lessons", "substitution_id")
    op.drop_column("lessons", "regular_teacher_id")
    op.drop_table("substitutions")
    op.drop_constraint("ck_closures_lesson_action", "closures", type_="check")
    op.drop_column("closures", "outcome")
    op.drop_column("closures", "lesson_action")
