"""Dunning's carried state is typed and versioned: the plain object an older run carried still loads."""

from __future__ import annotations

import uuid

from core.contracts.dunning import DunningCarried, FamilyDunningInput


def test_an_older_runs_plain_carry_loads_as_the_typed_state() -> None:
    invoice_id = str(uuid.uuid4())
    older = {
        "state": "warning",
        "paused": True,
        "paused_since": "2026-12-06T13:02:29.865917Z",
        "mirrored_paused": True,
        "lessons_suspended": False,
        "invoices": {
            "in_1": {
                "invoice_id": invoice_id,
                "stripe_invoice_id": "in_1",
                "amount_due_minor": 12000,
                "first_failed_at": "2026-12-06T13:02:29.842367Z",
                "attempts": 1,
                "hard_decline": True,
                "confirm_url": "https://pay.example/confirm",
            }
        },
        "failures_to_notify": [["in_1", 1]],
        "timeline": [{"at": "2026-12-06T13:02:29.865917Z", "kind": "paused"}],
    }
    carried = FamilyDunningInput.model_validate({"parent_id": str(uuid.uuid4()), "carried": older})
    assert isinstance(carried.carried, DunningCarried)
    state = carried.carried
    assert (state.version, state.state, state.paused) == (1, "warning", True)
    assert state.invoices["in_1"].invoice_id == uuid.UUID(invoice_id)
    assert state.failures_to_notify == [("in_1", 1)]
    assert state.forgive_note_id is None  # a field the older run did not carry takes its default
    # The link an older state carried is read, never written again.
    again = FamilyDunningInput.model_validate_json(carried.model_dump_json())
    assert again.carried is not None
    assert again.carried.invoices["in_1"].confirm_url is None
    assert again.model_dump() == FamilyDunningInput.model_validate(again.model_dump(mode="json")).model_dump()
