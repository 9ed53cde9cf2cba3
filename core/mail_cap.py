"""The daily cap on public-action emails per address (``domain.public_mail``), checked where each is sent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.settings import Settings
from domain.public_mail import PUBLIC_ACTION_TEMPLATES, is_public_action, over_daily_cap
from models import Communication, CommunicationStatus

DAY = timedelta(days=1)
SUPPRESSED_REASON = "not sent: the daily cap of public emails to this address was reached"


async def public_cap_reached(
    session: AsyncSession, settings: Settings, template: str, recipient: str, dedup_key: str
) -> bool:
    """True when ``template`` is a public-action email and ``recipient`` already got the day's cap of them.

    Holds a transaction-scoped lock on the address, so concurrent sends to it count one after the other.
    Sent and in-flight (pending) emails count; failed and suppressed ones reached nobody.
    """
    if not is_public_action(template):
        return False
    address = recipient.strip().lower()
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:lock, 0))"), {"lock": f"public-mail:{address}"}
    )
    sent = await session.scalar(
        select(func.count())
        .select_from(Communication)
        .where(
            col(Communication.recipient) == address,
            col(Communication.template).in_(PUBLIC_ACTION_TEMPLATES),
            col(Communication.status).in_([CommunicationStatus.sent, CommunicationStatus.pending]),
            col(Communication.created_at) >= datetime.now(UTC) - DAY,
            col(Communication.dedup_key) != dedup_key,
        )
    )
    return over_daily_cap(sent or 0, settings.public_email_daily_cap_per_address)
