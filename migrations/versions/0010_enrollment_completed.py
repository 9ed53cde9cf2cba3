"""Enrollments can end as completed: the lessons ran out and the family did not return

Revision ID: 0010_completed
Revises: 0009_charges

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_completed"
down_revision: str | Sequence[str] | None = "0009_charges"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = (
    "'received', 'validated', 'awaiting_confirmation', 'account_created', 'teacher_assigned', 'waitlisted', "
    "'demo_scheduled', 'awaiting_outcome', 'active', 'withdrawn', 'cancelled', 'failed'"
)
_INDEX = "uq_enrollments_student_instrument_live"


def _swap(states: str, closed: str) -> None:
    op.drop_constraint("ck_enrollments_state", "enrollments", type_="check")
    op.create_check_constraint("ck_enrollments_state", "enrollments", f"state IN ({states})")
    op.drop_index(_INDEX, table_name="enrollments")
    op.create_index(
        _INDEX,
        "enrollments",
        ["student_id", "instrument"],
        unique=True,
        postgresql_where=sa.text(f"state NOT IN ({closed})"),
    )


def upgrade() -> None:
    _swap(f"{_STATES}, 'completed'", "'withdrawn', 'cancelled', 'failed', 'completed'")


def downgrade() -> None:
    _swap(_STATES, "'withdrawn', 'cancelled', 'failed'")
