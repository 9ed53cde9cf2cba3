"""What erasure and retention keep of a record: pure functions over snapshots and Stripe event payloads."""

from __future__ import annotations

from typing import Any

# A redacted snapshot or payload says so, so a second redaction leaves it as it is.
REDACTED = "redacted"
# What a redacted Stripe event keeps of its object: what the books need (ids, types, amounts, states, times).
KEPT_EVENT_FIELDS = frozenset(
    {
        "id",
        "object",
        "type",
        "created",
        "livemode",
        "deleted",
        "customer",
        "invoice",
        "subscription",
        "payment_intent",
        "charge",
        "status",
        "paid",
        "amount",
        "amount_due",
        "amount_paid",
        "amount_remaining",
        "amount_refunded",
        "total",
        "subtotal",
        "currency",
        "attempt_count",
        "billing_reason",
        "period_start",
        "period_end",
        "failure_code",
        "refunded",
    }
)
EVENT_HEAD = ("id", "object", "type", "created", "livemode")
# Stripe sends the whole customer (name, email, phone, address) with its deletion: stored redacted from the start.
EVENTS_STORED_REDACTED = frozenset({"customer.deleted"})


def redact_snapshot(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    """An audit row's before/after without its values: which fields the action touched stays."""
    if snapshot is None or snapshot.get(REDACTED) is True:
        return snapshot
    return {REDACTED: True, "fields": sorted(snapshot)}


def is_redacted(payload: dict[str, Any]) -> bool:
    return payload.get(REDACTED) is True


def redact_event_payload(payload: dict[str, Any]) -> dict[str, Any]:
    """A Stripe event with only the flat fields of its object the books need (no name, email, address, phone or
    link, and no nested object, where those hide)."""
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    kept = {
        key: value
        for key, value in (obj.items() if isinstance(obj, dict) else [])
        if key in KEPT_EVENT_FIELDS and not isinstance(value, dict | list)
    }
    head: dict[str, Any] = {key: payload[key] for key in EVENT_HEAD if key in payload}
    return {**head, "data": {"object": kept}, REDACTED: True}
