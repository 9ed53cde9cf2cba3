"""Production refuses every development default, naming each offending setting in one error."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from core.settings import DEV_PAYLOAD_KEY, DEV_SECRET, Settings, production_problems

PRODUCTION = {
    "environment": "production",
    "jwt_secret": "a-real-secret-of-the-school-" + "x" * 20,
    "stripe_api_key": "sk_live_cedar_heights",
    "stripe_publishable_key": "pk_live_cedar_heights",
    "stripe_api_base": "",
    "stripe_webhook_secrets": ["whsec_real_endpoint_secret"],
    "public_base_url": "https://school.cedarheights.example",
    "payload_keys": {"2026-01": "cHJvZHVjdGlvbi1wYXlsb2FkLWtleS1mb3ItdGVzdHM="},
    "payload_key_current": "2026-01",
}


def production(**overrides: Any) -> Settings:
    return Settings(_env_file=None, **{**PRODUCTION, **overrides})  # type: ignore[call-arg]


def test_a_correct_production_configuration_passes() -> None:
    settings = production()
    assert production_problems(settings) == []
    assert settings.effective_stripe_api_base is None


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"jwt_secret": DEV_SECRET}, "CEDAR_JWT_SECRET is the development secret"),
        ({"jwt_secret": "s" * 31}, "CEDAR_JWT_SECRET is shorter than 32 characters"),
        ({"stripe_webhook_secrets": ["whsec_cedar_local_development"]}, "CEDAR_STRIPE_WEBHOOK_SECRETS holds the dev"),
        ({"stripe_webhook_secrets": ["whsec_new", "whsec_cedar_local_development"]}, "CEDAR_STRIPE_WEBHOOK_SECRETS"),
        ({"stripe_webhook_secrets": []}, "CEDAR_STRIPE_WEBHOOK_SECRETS is empty"),
        ({"stripe_api_key": "sk_test_cedar_local"}, "CEDAR_STRIPE_API_KEY is the localstripe key"),
        ({"stripe_api_key": ""}, "CEDAR_STRIPE_API_KEY is empty"),
        ({"stripe_publishable_key": "pk_test_cedar_local"}, "CEDAR_STRIPE_PUBLISHABLE_KEY is the localstripe key"),
        ({"stripe_publishable_key": ""}, "CEDAR_STRIPE_PUBLISHABLE_KEY is empty"),
        ({"stripe_api_base": "http://127.0.0.1:8420"}, "CEDAR_STRIPE_API_BASE is set"),
        ({"stripe_api_base": "https://stripe-proxy.example"}, "CEDAR_STRIPE_API_BASE is set"),
        ({"public_base_url": "http://school.cedarheights.example"}, "CEDAR_PUBLIC_BASE_URL is not https"),
        ({"public_base_url": "https://localhost:8000"}, "CEDAR_PUBLIC_BASE_URL points at this machine"),
        ({"public_base_url": "https://127.0.0.1"}, "CEDAR_PUBLIC_BASE_URL points at this machine"),
        ({"payload_keys": {"dev": DEV_PAYLOAD_KEY}, "payload_key_current": "dev"}, "CEDAR_PAYLOAD_KEYS holds the dev"),
        ({"payload_key_current": "2025-01"}, "CEDAR_PAYLOAD_KEY_CURRENT is not one of CEDAR_PAYLOAD_KEYS"),
    ],
)
def test_each_development_default_is_refused_by_name(override: dict[str, Any], named: str) -> None:
    problems = production_problems(production().model_copy(update=override))
    assert len(problems) == 1, problems
    assert problems[0].startswith(named), problems
    with pytest.raises(ValidationError, match=named):
        production(**override)


def test_every_default_left_is_named_in_one_error() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(_env_file=None, environment="production")  # type: ignore[call-arg]
    assert len(refused.value.errors()) == 1
    message = str(refused.value)
    for setting in (
        "CEDAR_JWT_SECRET",
        "CEDAR_STRIPE_WEBHOOK_SECRETS",
        "CEDAR_STRIPE_API_KEY",
        "CEDAR_STRIPE_PUBLISHABLE_KEY",
        "CEDAR_PUBLIC_BASE_URL",
        "CEDAR_PAYLOAD_KEYS",
    ):
        assert setting in message


def test_development_keeps_its_defaults() -> None:
    assert production_problems(Settings(_env_file=None, environment="development")) == []  # type: ignore[call-arg]
