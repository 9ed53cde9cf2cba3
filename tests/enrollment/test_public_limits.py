"""The public enrollment form's limits: per client IP and per parent email, per hour, shared through PostgreSQL."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.enrollment.helpers import application

ENROLL = "/api/v1/enrollments"


def assert_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"] == "rate_limited"
    assert 0 < int(response.headers["Retry-After"]) <= 3600


def for_email(email: str) -> dict[str, object]:
    body = application()
    body["parent"] = {**body["parent"], "email": email}  # type: ignore[dict-item]
    return body


@pytest.mark.enrollment_settings(enrollment_rate_limit_per_hour_email=2)
async def test_one_email_gets_a_few_enrollments_an_hour(api: httpx.AsyncClient) -> None:
    email = f"robin.{uuid.uuid4().hex[:8]}@family.example"
    statuses = [(await api.post(ENROLL, json=for_email(email))).status_code for _ in range(2)]
    assert statuses == [202, 202]
    # Counted case-blind, as the address is stored.
    assert_limited(await api.post(ENROLL, json=for_email(email.upper())))
    assert (await api.post(ENROLL, json=application())).status_code == 202  # another family is not held back


@pytest.mark.enrollment_settings(enrollment_rate_limit_per_hour_ip=2)
async def test_one_client_address_gets_a_few_enrollments_an_hour(api: httpx.AsyncClient) -> None:
    statuses = [(await api.post(ENROLL, json=application())).status_code for _ in range(2)]
    assert statuses == [202, 202]
    assert_limited(await api.post(ENROLL, json=application()))


@pytest.mark.enrollment_settings(enrollment_rate_limit_per_hour_email=1)
async def test_a_retry_under_the_same_idempotency_key_is_not_counted(api: httpx.AsyncClient) -> None:
    body = application()
    first = await api.post(ENROLL, json=body, headers={"Idempotency-Key": "retry-1"})
    retry = await api.post(ENROLL, json=body, headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == retry.status_code == 202, retry.text
    assert retry.json()["enrollment_id"] == first.json()["enrollment_id"]
    assert_limited(await api.post(ENROLL, json=body, headers={"Idempotency-Key": "another-try"}))
