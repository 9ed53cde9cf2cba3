"""Stripe's failures classified in one place: a refusal (4xx other than 409 and 429) is final, a rate limit waits
for Stripe's ``Retry-After``, outages are retried; and on the real stack a refused call fails at its first attempt."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
import stripe
from temporalio import workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ActivityError, ApplicationError, RetryState
from temporalio.worker import Worker

from activities.stripe import StripeActivities, classify_stripe_error, stripe_failures
from api.services.billing import failure_status
from core.contracts.billing import InvoiceRef, InvoiceSnapshot
from workers.registry import WorkerDeps, activity_functions
from workflows.billing import STRIPE_RETRY


def _error(kind: type[stripe.StripeError], status: int, **extra: object) -> stripe.StripeError:
    code = str(extra.pop("code", "resource_missing"))
    message = str(extra.pop("message", "No such invoice: 'in_123'"))
    headers = extra.pop("headers", None)
    body = {"error": {"code": code, "message": message, "type": "invalid_request_error"}}
    error = kind(message, http_status=status, json_body=body, headers=headers)  # type: ignore[arg-type]
    error.code = code
    return error


@pytest.mark.parametrize(
    ("kind", "status", "expected_type"),
    [
        (stripe.AuthenticationError, 401, "StripeAuthentication"),
        (stripe.PermissionError, 403, "StripePermission"),
        (stripe.IdempotencyError, 400, "StripeIdempotency"),
    ],
)
def test_a_refusal_is_final_with_stripes_reason(
    kind: type[stripe.StripeError], status: int, expected_type: str
) -> None:
    decided = classify_stripe_error(_error(kind, status), "fetch_invoice")
    assert isinstance(decided, ApplicationError)
    assert decided.non_retryable
    assert decided.type == expected_type
    assert str(status) in decided.message
    assert "resource_missing" in decided.message
    assert "No such invoice" in decided.message
    assert "fetch_invoice" in decided.message


@pytest.mark.parametrize("status", [400, 404])
def test_an_invalid_request_is_final(status: int) -> None:
    error = stripe.InvalidRequestError("No such invoice: 'in_123'", None, "resource_missing", http_status=status)
    decided = classify_stripe_error(error, "fetch_invoice")
    assert isinstance(decided, ApplicationError)
    assert decided.non_retryable
    assert decided.type == "StripeInvalidRequest"
    assert f"{status}, resource_missing, No such invoice" in decided.message


def test_an_undeclared_card_error_is_final() -> None:
    error = stripe.CardError("Your card was declined.", "card", "card_declined", http_status=402)
    decided = classify_stripe_error(error, "attach_card")
    assert isinstance(decided, ApplicationError)
    assert decided.non_retryable
    assert decided.type == "StripeCard"


def test_a_refusal_quoting_an_address_does_not_carry_it() -> None:
    error = stripe.InvalidRequestError("Invalid email: ann.lee@example.com", "email", "email_invalid", http_status=400)
    decided = classify_stripe_error(error, "ensure_customer")
    assert isinstance(decided, ApplicationError)
    assert "ann.lee" not in decided.message
    assert "example.com" not in decided.message
    assert "email_invalid" in decided.message


@pytest.mark.parametrize(
    ("headers", "delay"),
    [
        ({"Retry-After": "7"}, timedelta(seconds=7)),
        ({"retry-after": "2.5"}, timedelta(seconds=2.5)),
        (None, None),
        ({"Retry-After": "soon"}, None),
    ],
)
def test_a_rate_limit_is_retried_after_stripes_delay(headers: dict[str, str] | None, delay: timedelta | None) -> None:
    error = _error(stripe.RateLimitError, 429, code="rate_limit", headers=headers)
    decided = classify_stripe_error(error, "pay_invoice")
    assert isinstance(decided, ApplicationError)
    assert not decided.non_retryable
    assert decided.type == "StripeRateLimited"
    assert decided.next_retry_delay == delay


@pytest.mark.parametrize(
    "error",
    [
        stripe.APIError("internal", http_status=500),
        stripe.APIError("unavailable", http_status=503),
        stripe.APIConnectionError("connection reset"),
        stripe.InvalidRequestError("in flight", "id", "lock_timeout", http_status=409),
    ],
)
def test_outages_and_conflicts_stay_retryable(error: stripe.StripeError) -> None:
    assert classify_stripe_error(error, "refund") is error


async def test_the_decorator_passes_results_and_classifies_errors() -> None:
    @stripe_failures
    async def answer(value: int) -> int:
        if value < 0:
            raise stripe.InvalidRequestError("No such invoice", None, "resource_missing", http_status=404)
        if value == 0:
            raise stripe.APIConnectionError("reset")
        return value * 2

    assert await answer(2) == 4
    with pytest.raises(ApplicationError) as refused:
        await answer(-1)
    assert refused.value.non_retryable
    assert isinstance(refused.value.__cause__, stripe.InvalidRequestError)
    with pytest.raises(stripe.APIConnectionError):
        await answer(0)


@workflow.defn(name="StripeFailureProbe", sandboxed=False)
class StripeFailureProbe:
    """Calls one Stripe activity with billing's own retry policy."""

    @workflow.run
    async def run(self, stripe_invoice_id: str) -> InvoiceSnapshot:
        return await workflow.execute_activity_method(
            StripeActivities.fetch_invoice,
            InvoiceRef(stripe_invoice_id=stripe_invoice_id),
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STRIPE_RETRY,
        )


@pytest.fixture
async def probe_worker(temporal_client: Client, worker_deps: WorkerDeps) -> AsyncIterator[str]:
    queue = f"stripe-failures-{uuid.uuid4()}"
    async with Worker(
        temporal_client, task_queue=queue, workflows=[StripeFailureProbe], activities=activity_functions(worker_deps)
    ):
        yield queue


async def test_a_stripe_refusal_fails_at_the_first_attempt(temporal_client: Client, probe_worker: str) -> None:
    handle = await temporal_client.start_workflow(
        StripeFailureProbe.run,
        "in_does_not_exist",
        id=f"stripe-failure-probe-{uuid.uuid4()}",
        task_queue=probe_worker,
        execution_timeout=timedelta(seconds=60),
    )
    with pytest.raises(WorkflowFailureError) as failed:
        await handle.result()
    activity_error = failed.value.cause
    assert isinstance(activity_error, ActivityError)
    assert activity_error.retry_state == RetryState.NON_RETRYABLE_FAILURE
    cause = activity_error.cause
    assert isinstance(cause, ApplicationError)
    assert cause.type == "StripeInvalidRequest"
    assert "404" in cause.message
    attempts = [
        event.activity_task_started_event_attributes.attempt
        async for event in handle.fetch_history_events()
        if event.HasField("activity_task_started_event_attributes")
    ]
    assert attempts == [1]


def test_billings_refusals_map_to_the_status_of_whose_fault_it_is() -> None:
    assert failure_status("StripeInvalidRequest") == 502
    assert failure_status("StripeRateLimited") == 502
    assert failure_status("InternalError") == 500
    assert failure_status("InvalidRequest") == 422
    assert failure_status("NotFound") == 404
    assert failure_status("NoRate") == 409
    assert failure_status(None) == 409
