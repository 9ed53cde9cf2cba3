"""Ledger accounts for one-off charges and credits (books, recital fees, goodwill credits)

Revision ID: 0009_charges
Revises: 0006_attend

"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009_charges"
down_revision: str | Sequence[str] | None = "0006_attend"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "INSERT INTO ledger_accounts (code, name, type) VALUES "
        "('other_revenue', 'Other revenue (one-off charges)', 'revenue'), "
        "('credits_given', 'Credits given', 'contra_revenue') "
        "ON CONFLICT (code) DO NOTHING"
    )


def downgrade() -> None:
    op.execute("DELETE FROM ledger_accounts WHERE code IN ('other_revenue', 'credits_given')")
