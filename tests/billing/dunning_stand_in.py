"""A stand-in for the dunning colleague's workflow (same name), recording what billing tells it.

Kept in its own module with only light imports: the workflow sandbox re-imports a workflow's module.
"""

from __future__ import annotations

from typing import Any

from temporalio import workflow

from core.contracts.dunning import (
    FAMILY_DUNNING_WORKFLOW,
    SIGNAL_CARD_UPDATED,
    SIGNAL_INVOICE_FAILED,
    SIGNAL_INVOICE_PAID,
    CardUpdated,
    FamilyDunningInput,
    InvoiceFailed,
    InvoicePaid,
)


@workflow.defn(name=FAMILY_DUNNING_WORKFLOW)
class DunningStandIn:
    """Records what billing tells dunning, so tests can assert on it."""

    def __init__(self) -> None:
        self._received: list[dict[str, Any]] = []

    @workflow.run
    async def run(self, _: FamilyDunningInput) -> None:
        await workflow.wait_condition(lambda: False)

    @workflow.signal(name=SIGNAL_INVOICE_FAILED)
    def invoice_failed(self, message: InvoiceFailed) -> None:
        self._received.append({"signal": SIGNAL_INVOICE_FAILED, **message.model_dump(mode="json")})

    @workflow.signal(name=SIGNAL_INVOICE_PAID)
    def invoice_paid(self, message: InvoicePaid) -> None:
        self._received.append({"signal": SIGNAL_INVOICE_PAID, **message.model_dump(mode="json")})

    @workflow.signal(name=SIGNAL_CARD_UPDATED)
    def card_updated(self, message: CardUpdated) -> None:
        self._received.append({"signal": SIGNAL_CARD_UPDATED, **message.model_dump(mode="json")})

    @workflow.query(name="received")
    def received(self) -> list[dict[str, Any]]:
        return self._received
