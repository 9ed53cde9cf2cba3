"""Temporal plumbing shared by the API and the worker: client, data converter, ids and search attributes."""

from __future__ import annotations

import uuid

from temporalio.client import Client
from temporalio.common import SearchAttributeKey
from temporalio.contrib.pydantic import pydantic_data_converter

from core.settings import Settings

# Search attributes hold states and ids only: the Temporal UI shows them in plain text, so no personal data.
ENROLLMENT_STATE = SearchAttributeKey.for_keyword("CedarEnrollmentState")
DUNNING_STATE = SearchAttributeKey.for_keyword("CedarDunningState")
SEARCH_ATTRIBUTES: dict[str, str] = {
    ENROLLMENT_STATE.name: "Keyword",
    DUNNING_STATE.name: "Keyword",
}


def enrollment_workflow_id(enrollment_id: uuid.UUID | str) -> str:
    return f"enrollment-{enrollment_id}"


def billing_workflow_id(parent_id: uuid.UUID | str) -> str:
    """One billing workflow per family, keyed by the parent (never by an email)."""
    return f"family-billing-{parent_id}"


def dunning_workflow_id(parent_id: uuid.UUID | str) -> str:
    """One dunning workflow per family (the same key as billing's), alive while the family owes money."""
    return f"family-dunning-{parent_id}"


async def connect_temporal(settings: Settings, address: str | None = None) -> Client:
    return await Client.connect(
        address or settings.effective_temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=pydantic_data_converter,
    )


class LazyTemporalClient:
    """Connects on first use, so the API starts (and reports Temporal as down) while Temporal is away."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: Client | None = None

    async def get(self) -> Client:
        if self._client is None:
            self._client = await connect_temporal(self._settings)
        return self._client
