"""Emails recorded as suppressed (over the daily cap of public-action emails per address)

Revision ID: 0005
Revises: 0004

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_constraint("ck_communications_status", "communications", type_="check")
    op.create_check_constraint(
        "ck_communications_status", "communications", "status IN ('pending', 'sent', 'failed', 'suppressed')"
    )
    # The cap counts an address's recent public emails on every send.
    op.create_index("ix_communications_recipient_created_at", "communications", ["recipient", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_communications_recipient_created_at", table_name="communications")
    op.execute("DELETE FROM communications WHERE status = 'suppressed'")
    op.drop_constraint("ck_communications_status", "communications", type_="check")
    op.create_check_constraint("ck_communications_status", "communications", "status IN ('pending', 'sent', 'failed')")
