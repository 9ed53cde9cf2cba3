"""Redaction keeps what the books and the audit trail need and nothing that identifies a person."""

from __future__ import annotations

from domain.privacy import redact_event_payload, redact_snapshot


def test_a_snapshot_keeps_its_field_names_only_and_redacts_once() -> None:
    redacted = redact_snapshot({"email": "a@b.example", "phone": "+16045550100"})
    assert redacted == {"redacted": True, "fields": ["email", "phone"]}
    assert redact_snapshot(redacted) == redacted
    assert redact_snapshot(None) is None


def test_an_event_keeps_ids_types_and_amounts_and_loses_names_emails_and_links() -> None:
    event = {
        "id": "evt_1",
        "object": "event",
        "type": "invoice.payment_failed",
        "created": 1700000000,
        "request": {"id": "req_1"},
        "data": {
            "object": {
                "id": "in_1",
                "object": "invoice",
                "customer": "cus_1",
                "customer_email": "a@b.example",
                "customer_name": "Ada B",
                "customer_address": {"line1": "1 Main St"},
                "hosted_invoice_url": "https://invoice.stripe.test/x",
                "amount_due": 12000,
                "currency": "cad",
                "lines": {"data": [{"description": "Ada's lessons"}]},
            },
            "previous_attributes": {"email": "old@b.example"},
        },
    }
    redacted = redact_event_payload(event)
    assert redacted == {
        "id": "evt_1",
        "object": "event",
        "type": "invoice.payment_failed",
        "created": 1700000000,
        "data": {
            "object": {"id": "in_1", "object": "invoice", "customer": "cus_1", "amount_due": 12000, "currency": "cad"}
        },
        "redacted": True,
    }
    assert redact_event_payload(redacted) == redacted
    assert redact_event_payload({"id": "evt_2"}) == {"id": "evt_2", "data": {"object": {}}, "redacted": True}
