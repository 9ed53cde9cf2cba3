"""Attendance on lessons and teachers' hourly rates (teacher pay)

Revision ID: 0006_attend
Revises: 0006_credits

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_attend"
down_revision: str | Sequence[str] | None = "0006_credits"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("lessons", sa.Column("attendance", sa.String(length=16), nullable=True))
    op.create_check_constraint(
        "ck_lessons_attendance",
        "lessons",
        "attendance IS NULL OR attendance IN ('present', 'late', 'absent', 'excused')",
    )
    # Lessons marked before attendance existed read as present (completed) and absent (no-show).
    op.execute("UPDATE lessons SET attendance = 'present' WHERE status = 'completed'")
    op.execute("UPDATE lessons SET attendance = 'absent' WHERE status = 'no_show'")
    op.add_column("teachers", sa.Column("hourly_rate_minor", sa.Integer(), nullable=False, server_default=sa.text("0")))
    op.create_check_constraint("ck_teachers_hourly_rate", "teachers", "hourly_rate_minor >= 0")


def downgrade() -> None:
    op.drop_constraint("ck_teachers_hourly_rate", "teachers", type_="check")
    op.drop_column("teachers", "hourly_rate_minor")
    op.drop_constraint("ck_lessons_attendance", "lessons", type_="check")
    op.drop_column("lessons", "attendance")
