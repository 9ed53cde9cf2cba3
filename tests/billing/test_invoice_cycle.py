"""Which period a subscription invoice bills, read from the invoice as Stripe (or localstripe) gives it: no server."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from activities.stripe import cycle_start

TRIAL_END = datetime(2026, 9, 15, 23, tzinfo=UTC)
ANCHOR = datetime(2026, 10, 1, 7, tzinfo=UTC)


def _line(start: datetime, **fields: Any) -> dict[str, Any]:
    return {"amount": 100, "period": {"start": int(start.timestamp()), "end": int(ANCHOR.timestamp())}, **fields}


def test_the_stubs_prorated_line_dates_it_from_the_trials_end() -> None:
    # API versions from 2025-03: the subscription under `parent`, the line's origin under its own `parent`.
    invoice = {
        "parent": {"type": "subscription_details", "subscription_details": {"subscription": "sub_1"}},
        "lines": {
            "data": [
                _line(
                    TRIAL_END,
                    parent={"type": "subscription_item_details", "subscription_item_details": {"proration": True}},
                ),
                # Cedar's own lines never date the invoice: a registration fee pending since earlier, an adjustment.
                _line(datetime(2026, 8, 1, tzinfo=UTC), metadata={"cedar_charge_id": "c1"}),
                _line(datetime(2026, 8, 1, tzinfo=UTC), metadata={"cedar_adjustment": "sub_1:2026-09"}),
            ]
        },
    }
    assert cycle_start(invoice) == TRIAL_END


def test_a_cycle_invoice_and_a_development_renewal() -> None:
    cycle = {"subscription": "sub_1", "lines": {"data": [_line(ANCHOR, type="subscription")]}}
    assert cycle_start(cycle) == ANCHOR
    # localstripe has no clock: the development renewal stamps the period it stands in for.
    stamped = {**cycle, "metadata": {"cedar_period_start": str(int(TRIAL_END.timestamp()))}}
    assert cycle_start(stamped) == TRIAL_END


def test_an_invoice_of_no_subscription_bills_no_period() -> None:
    one_off = {"subscription": None, "lines": {"data": [_line(ANCHOR, metadata={"cedar_charge_id": "c1"})]}}
    assert cycle_start(one_off) is None
    assert cycle_start({"subscription": "sub_1", "lines": {"data": []}}) is None
