"""Enrollments for an existing family wait for its owner's confirmation

Revision ID: 0003
Revises: 0002

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LATER_STATES = (
    "'account_created', 'teacher_assigned', 'waitlisted', 'demo_scheduled', "
    "'awaiting_outcome', 'active', 'withdrawn', 'cancelled', 'failed'"
)


def upgrade() -> None:
    op.add_column("enrollments", sa.Column("family_confirmed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "enrollments",
        sa.Column("confirmation_token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    )
    op.drop_constraint("ck_enrollments_state", "enrollments", type_="check")
    op.create_check_constraint(
        "ck_enrollments_state",
        "enrollments",
        f"state IN ('received', 'validated', 'awaiting_confirmation', {_LATER_STATES})",
    )


def downgrade() -> None:
    op.drop_constraint("ck_enrollments_state", "enrollments", type_="check")
    op.create_check_constraint(
        "ck_enrollments_state", "enrollments", f"state IN ('received', 'validated', {_LATER_STATES})"
    )
    op.drop_column("enrollments", "confirmation_token_hash")
    op.drop_column("enrollments", "family_confirmed_at")
