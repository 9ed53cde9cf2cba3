"""Billing set-up's harness: billing's worker, localstripe and the real app over HTTP, as billing's tests use."""

from tests.billing.conftest import billing_worker, http, served_api, stripe_client  # noqa: F401 (fixtures)
