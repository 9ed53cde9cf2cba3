"""Property: any sequence of billing events, duplicates and all, posted through billing's own writer keeps every
journal entry balanced and the trial balance at zero, and posts each source exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import replace

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlmodel import col

from activities.billing import post_events
from core.db import create_engine, create_session_factory, transaction
from core.settings import Settings
from domain import ledger
from domain.ledger import LedgerEvent, entries_for
from models import JournalEntry, Posting

KINDS = ["invoice_finalized", "invoice_voided", "payment_received", "refund_issued", "written_off", "lesson_completed"]


@st.composite
def billing_event(draw: st.DrawFn) -> LedgerEvent:
    amount = draw(st.integers(min_value=0, max_value=5_000_000))
    return LedgerEvent(
        kind=draw(st.sampled_from(KINDS)),
        source_id=f"obj_{draw(st.integers(min_value=0, max_value=6))}",  # a small pool: the same source recurs
        amount_minor=amount,
        fee_minor=draw(st.integers(min_value=0, max_value=amount)),
    )


async def _post_and_read(settings: Settings, batches: list[list[LedgerEvent]]) -> tuple[dict[str, int], list[int]]:
    engine = create_engine(settings)
    try:
        sessions = create_session_factory(engine)
        for batch in batches:  # each batch commits on its own, as each activity does
            async with transaction(sessions) as session:
                await post_events(session, None, batch)
        keys = {e.idempotency_key for batch in batches for event in batch for e in entries_for(event)}
        async with sessions() as session:
            rows = await session.execute(
                select(col(Posting.account_code), col(Posting.amount_minor), col(Posting.entry_id))
                .join(JournalEntry, col(JournalEntry.id) == col(Posting.entry_id))
                .where(col(JournalEntry.idempotency_key).in_(keys))
            )
            balances: Counter[str] = Counter()
            per_entry: Counter[uuid.UUID] = Counter()
            for code, amount, entry_id in rows.all():
                balances[code] += amount
                per_entry[entry_id] += amount
            entries = await session.scalar(
                select(func.count()).select_from(JournalEntry).where(col(JournalEntry.idempotency_key).in_(keys))
            )
        assert entries == len(keys)
        return dict(balances), list(per_entry.values())
    finally:
        await engine.dispose()


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(billing_event(), max_size=6), min_size=1, max_size=4))
def test_any_sequence_of_billing_events_keeps_the_books_balanced(
    settings: Settings, batches: list[list[LedgerEvent]]
) -> None:
    # Sources are unique to this example, so examples sharing the database do not see each other's entries.
    run = uuid.uuid4()
    batches = [[replace(e, source_id=f"{run}:{e.source_id}") for e in batch] for batch in batches]
    balances, entry_totals = asyncio.run(_post_and_read(settings, batches))

    assert all(total == 0 for total in entry_totals)
    assert sum(balances.values()) == 0
    # The first event of each source is the one posted: what the domain's trial balance of those entries says.
    first: dict[str, ledger.JournalEntry] = {}
    for event in (e for batch in batches for e in batch):
        for entry in entries_for(event):
            first.setdefault(entry.idempotency_key, entry)
    expected = {a.value: v for a, v in ledger.trial_balance(first.values()).items() if v}
    assert {code: v for code, v in balances.items() if v} == expected
