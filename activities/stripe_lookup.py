"""Reading a PaymentMethod from Stripe before an enrollment goes on (billing owns every other Stripe call)."""

from __future__ import annotations

from datetime import UTC, datetime

import stripe
from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.enrollment_messages import CheckPaymentMethod

# Real Stripe reports these on a card it has checked; "fail" means the bank refused the details.
_FAILED_CHECK = "fail"


class StripeLookupActivities:
    def __init__(self, client: stripe.StripeClient) -> None:
        self._client = client

    @activity.defn(name="check_payment_method")
    async def check_payment_method(self, request: CheckPaymentMethod) -> None:
        """Non-retryable when the PaymentMethod is unknown, not a card, expired or failed Stripe's checks;
        Stripe being down or slow is raised as is, so the activity retries."""
        try:
            method = await self._client.v1.payment_methods.retrieve_async(request.payment_method_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404 or exc.code == "resource_missing":
                raise _declined("the payment method does not exist in Stripe") from exc
            raise _declined(f"Stripe refused the payment method: {exc.user_message or exc.code}") from exc
        except stripe.CardError as exc:
            raise _declined(f"the card was declined ({exc.code})") from exc
        data = method.to_dict()
        card = data.get("card") if data.get("type") == "card" else None
        if card is None:
            raise _declined("the payment method is not a card")
        now = datetime.now(UTC)
        if (int(card["exp_year"]), int(card["exp_month"])) < (now.year, now.month):
            raise _declined("the card has expired")
        checks = card.get("checks") or {}
        failed = [name for name, result in checks.items() if result == _FAILED_CHECK]
        if failed:
            raise _declined(f"the card failed Stripe's checks ({', '.join(sorted(failed))})")


def _declined(reason: str) -> ApplicationError:
    return ApplicationError(reason, type="PaymentMethodRejected", non_retryable=True)
