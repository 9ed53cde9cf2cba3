"""The Stripe client: the real ``stripe`` SDK, pointed at localstripe in development and tests."""

from __future__ import annotations

import stripe

from core.settings import Settings


def create_stripe_client(settings: Settings) -> stripe.StripeClient:
    base = settings.effective_stripe_api_base
    return stripe.StripeClient(
        settings.stripe_api_key,
        base_addresses={"api": base} if base else {},
        http_client=stripe.HTTPXClient(),
        # Our activities own retries (Temporal retry policies); the SDK's own would hide failures from history.
        max_network_retries=0,
    )
