"""Re-enrollment offers: one per enrollment and next semester, with the family's answer

Revision ID: 0011_reenroll
Revises: 0010_completed

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0011_reenroll"
down_revision: str | Sequence[str] | None = "0010_completed"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reenrollment_offers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workflow_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("parent_id", sa.Uuid(), nullable=False),
        sa.Column("enrollment_id", sa.Uuid(), nullable=False),
        sa.Column("student_id", sa.Uuid(), nullable=False),
        sa.Column("teacher_id", sa.Uuid(), nullable=False),
        sa.Column("semester_id", sa.Uuid(), nullable=False),
        sa.Column("next_semester_id", sa.Uuid(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("local_time", sa.Time(), nullable=False),
        sa.Column("lesson_minutes", sa.Integer(), nullable=False),
        sa.Column("same_as_now", sa.Boolean(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=False),
        sa.Column("default_answer", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("returning", sa.Boolean(), nullable=True),
        sa.Column("answered_by", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=True),
        sa.Column("answered_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("weekday BETWEEN 0 AND 6", name="ck_reenrollment_offers_weekday"),
        sa.CheckConstraint("default_answer IN ('return', 'end')", name="ck_reenrollment_offers_default"),
        sa.CheckConstraint(
            "answered_by IS NULL OR answered_by IN ('family', 'office', 'default')",
            name="ck_reenrollment_offers_answered_by",
        ),
        sa.CheckConstraint(
            "outcome IN ('open', 'booked', 'finished', 'unavailable')", name="ck_reenrollment_offers_outcome"
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["parents.id"]),
        sa.ForeignKeyConstraint(["enrollment_id"], ["enrollments.id"]),
        sa.ForeignKeyConstraint(["student_id"], ["students.id"]),
        sa.ForeignKeyConstraint(["teacher_id"], ["teachers.id"]),
        sa.ForeignKeyConstraint(["semester_id"], ["semesters.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["next_semester_id"], ["semesters.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["answered_by_user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("enrollment_id", "next_semester_id", name="uq_reenrollment_offers_enrollment_next"),
    )
    for column in ("workflow_id", "parent_id", "enrollment_id", "teacher_id", "semester_id", "next_semester_id"):
        op.create_index(op.f(f"ix_reenrollment_offers_{column}"), "reenrollment_offers", [column], unique=False)


def downgrade() -> None:
    op.drop_table("reenrollment_offers")
