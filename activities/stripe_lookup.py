"""Checking the parent's card with Stripe before an enrollment goes on (billing owns every other Stripe call)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import stripe
from stripe.params import SetupIntentCreateParams
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.stripe import decline_codes, decline_of, last4
from core.contracts.enrollment import CheckPaymentMethod
from core.settings import Settings
from domain.billing_rules import stripe_key

# Real Stripe reports these on a card it has checked; "fail" means the bank refused the details.
_FAILED_CHECK = "fail"


class StripeLookupActivities:
    def __init__(self, client: stripe.StripeClient, settings: Settings) -> None:
        self._client = client
        self._localstripe = settings.uses_localstripe

    @activity.defn(name="check_payment_method")
    async def check_payment_method(self, request: CheckPaymentMethod) -> None:
        """Non-retryable when the PaymentMethod is unknown, not a card, expired, failed Stripe's checks or is
        declined by the bank; Stripe being down or slow is raised as is, so the activity retries."""
        try:
            method = (await self._client.v1.payment_methods.retrieve_async(request.payment_method_id)).to_dict()
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404 or exc.code == "resource_missing":
                raise _rejected("the payment method does not exist in Stripe") from exc
            raise _rejected(f"Stripe refused the payment method: {exc.user_message or exc.code}") from exc
        card = method.get("card") if method.get("type") == "card" else None
        if card is None:
            raise _rejected("the payment method is not a card")
        now = datetime.now(UTC)
        if (int(card["exp_year"]), int(card["exp_month"])) < (now.year, now.month):
            raise _rejected("the card has expired")
        checks = card.get("checks") or {}
        failed = [name for name, result in checks.items() if result == _FAILED_CHECK]
        if failed:
            raise _rejected(f"the card failed Stripe's checks ({', '.join(sorted(failed))})")
        await self._set_up_for_later(request, method)

    async def _set_up_for_later(self, request: CheckPaymentMethod, method: dict[str, Any]) -> None:
        """Ask the bank now, as Stripe advises before saving a card for off-session payments: a SetupIntent with
        no customer, so the card stays free for billing to attach to the family once the demo goes well."""
        key = stripe_key("check-card", str(request.enrollment_id), request.payment_method_id)
        params: SetupIntentCreateParams = {
            "usage": "off_session",
            "metadata": {"cedar_enrollment_id": str(request.enrollment_id)},
        }
        if not self._localstripe:  # Stripe needs it to confirm with no return URL; localstripe refuses it
            params["automatic_payment_methods"] = {"enabled": True, "allow_redirects": "never"}
        intent = await self._client.v1.setup_intents.create_async(params=params, options={"idempotency_key": key})
        try:
            confirmed = await self._client.v1.setup_intents.confirm_async(
                intent.id,
                params={"payment_method": request.payment_method_id},
                options={"idempotency_key": stripe_key("check-card-confirm", intent.id)},
            )
        except stripe.CardError as exc:
            code, decline = decline_codes(exc.code, decline_of(exc), last4(method), localstripe=self._localstripe)
            raise _rejected(f"the card was declined ({decline or code})") from exc
        if confirmed.status == "requires_action":
            # The bank wants the parent to confirm: not a refusal. Billing asks the parent when it first charges.
            await self._client.v1.setup_intents.cancel_async(
                intent.id, options={"idempotency_key": stripe_key("check-card-cancel", intent.id)}
            )


def _rejected(reason: str) -> ApplicationError:
    return ApplicationError(reason, type="PaymentMethodRejected", non_retryable=True)
