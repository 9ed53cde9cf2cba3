"""Families in arrears as billing_accounts mirrors their dunning workflows' state."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Row, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.dunning import DunningState
from models import AuditLog, BillingAccount, Invoice, Parent


async def family_exists(session: AsyncSession, parent_id: uuid.UUID) -> bool:
    return await session.get(Parent, parent_id) is not None


async def families_in(session: AsyncSession, state: DunningState | None) -> Sequence[Row[uuid.UUID, str, bool]]:
    """(parent id, state, paused) of the families in ``state`` (default: every state but clear), latest change
    first, 500 at most."""
    query = select(col(BillingAccount.parent_id), col(BillingAccount.dunning_state), col(BillingAccount.dunning_paused))
    query = query.where(
        col(BillingAccount.dunning_state) == state if state else col(BillingAccount.dunning_state) != "clear"
    )
    return (await session.execute(query.order_by(col(BillingAccount.updated_at).desc()).limit(500))).all()


async def arrears(session: AsyncSession) -> Sequence[Row[uuid.UUID, str, bool, str, str, int, int]]:
    """(parent id, state, paused, first name, last name, past-due invoices, amount they still owe in minor units) of
    every family in dunning, paused, or with a past-due invoice: the office's list, latest change first, 500 at
    most."""
    owed = func.coalesce(func.sum(col(Invoice.amount_due_minor) - col(Invoice.amount_paid_minor)), 0)
    query = (
        select(
            col(BillingAccount.parent_id),
            col(BillingAccount.dunning_state),
            col(BillingAccount.dunning_paused),
            col(Parent.first_name),
            col(Parent.last_name),
            func.count(col(Invoice.id)),
            owed,
        )
        .join(Parent, col(Parent.id) == col(BillingAccount.parent_id))
        .outerjoin(
            Invoice,
            (col(Invoice.billing_account_id) == col(BillingAccount.id)) & (col(Invoice.status) == "past_due"),
        )
        .group_by(col(BillingAccount.id), col(Parent.id))
        .having(
            or_(
                col(BillingAccount.dunning_state) != "clear",
                col(BillingAccount.dunning_paused).is_(True),
                func.count(col(Invoice.id)) > 0,
            )
        )
        .order_by(col(BillingAccount.updated_at).desc())
        .limit(500)
    )
    return (await session.execute(query)).all()


async def family_name(session: AsyncSession, parent_id: uuid.UUID) -> tuple[str, str] | None:
    parent = await session.get(Parent, parent_id)
    return (parent.first_name, parent.last_name) if parent else None


async def action_reasons(session: AsyncSession, note_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The reasons admins gave for dunning actions, by the audit row's id the workflow's timeline names."""
    if not note_ids:
        return {}
    rows = await session.execute(select(col(AuditLog.id), col(AuditLog.after)).where(col(AuditLog.id).in_(note_ids)))
    return {row_id: str((after or {}).get("reason", "")) for row_id, after in rows.all()}


async def action_note(
    session: AsyncSession, parent_id: uuid.UUID, action: str, idempotency_key: uuid.UUID | None
) -> uuid.UUID | None:
    """The audit row a first attempt of the same request (same ``Idempotency-Key``) wrote, if any."""
    if idempotency_key is None:
        return None
    query = select(col(AuditLog.id)).where(
        col(AuditLog.entity_type) == "family_dunning",
        col(AuditLog.entity_id) == str(parent_id),
        col(AuditLog.action) == f"dunning.{action}",
        col(AuditLog.after)["idempotency_key"].astext == str(idempotency_key),
    )
    found: uuid.UUID | None = await session.scalar(query.limit(1))
    return found
