"""A make-up credit's database steps (short: run as local activities by ``workflows/makeup.py``).

Each change is one conditional update of the ``makeup_credits`` row (``WHERE status = 'available'``), so a
booking, an expiry, an extension and a void can never both apply: whichever commits first wins, and the others
see the row as it now is (``changed=False``). Run again (a retry), a change finds its own result.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import update
from sqlmodel import col
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.contracts.makeup import CreditChange, CreditRef, CreditRow
from core.db import SessionFactory, transaction
from domain.makeups import CreditStatus
from models import MakeupCredit


def _row(credit: MakeupCredit, changed: bool) -> CreditRow:
    return CreditRow(
        credit_id=credit.id,
        status=credit.status,
        expires_at=credit.expires_at,
        used_lesson_id=credit.used_lesson_id,
        changed=changed,
    )


class MakeupActivities:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    @activity.defn(name="makeup_change_credit")
    async def change(self, request: CreditChange) -> CreditRow:
        now = datetime.now(UTC)
        values: dict[str, object] = {"updated_at": now}
        conditions = [col(MakeupCredit.id) == request.credit_id, col(MakeupCredit.status) == CreditStatus.available]
        if request.action == "extend":
            if request.by is None:
                raise ApplicationError("extend needs by", non_retryable=True)
            values["expires_at"] = col(MakeupCredit.expires_at) + request.by
        elif request.action == "void":
            values["status"] = CreditStatus.void
        else:
            values["status"] = CreditStatus.expired
            conditions.append(col(MakeupCredit.expires_at) <= now)
        async with transaction(self._sessions) as session:
            result = await session.execute(update(MakeupCredit).where(*conditions).values(**values))
            changed = bool(getattr(result, "rowcount", 0))
            credit = await session.get(MakeupCredit, request.credit_id, populate_existing=True)
            if credit is None:
                raise ApplicationError(f"credit {request.credit_id} not found", non_retryable=True)
            return _row(credit, changed)

    @activity.defn(name="makeup_read_credit")
    async def read(self, request: CreditRef) -> CreditRow:
        async with self._sessions() as session:
            credit = await session.get(MakeupCredit, request.credit_id)
            if credit is None:
                raise ApplicationError(f"credit {request.credit_id} not found", non_retryable=True)
            return _row(credit, changed=False)

    @activity.defn(name="makeup_mark_reminded")
    async def mark_reminded(self, request: CreditRef) -> None:
        async with transaction(self._sessions) as session:
            await session.execute(
                update(MakeupCredit)
                .where(col(MakeupCredit.id) == request.credit_id)
                .values(reminder_sent_at=datetime.now(UTC))
            )
