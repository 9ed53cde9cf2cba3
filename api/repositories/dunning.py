"""Families in arrears as billing_accounts mirrors their dunning workflows' state."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from domain.dunning import DunningState
from models import BillingAccount, Parent


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
