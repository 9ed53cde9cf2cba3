"""``python -m workers.search_attributes`` registers Cedar's search attributes once: a second run changes nothing."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client

from core.temporal import SEARCH_ATTRIBUTES
from tests.waiting import eventually
from workers.search_attributes import SearchAttributeConflict, ensure_search_attributes


async def _fresh_namespace(client: Client) -> str:
    namespace = f"cedar-sa-{uuid.uuid4().hex[:12]}"
    retention = Duration()
    retention.FromTimedelta(timedelta(days=1))
    await client.workflow_service.register_namespace(
        RegisterNamespaceRequest(namespace=namespace, workflow_execution_retention_period=retention)
    )
    return namespace


async def _custom(client: Client, namespace: str) -> dict[str, int]:
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    return dict(listed.custom_attributes)


async def test_a_second_run_changes_nothing(temporal_client: Client) -> None:
    namespace = await _fresh_namespace(temporal_client)
    assert not set(SEARCH_ATTRIBUTES) & set(await _custom(temporal_client, namespace))

    async def first_run() -> list[str] | None:
        try:
            return await ensure_search_attributes(temporal_client, namespace=namespace)
        except Exception:  # the new namespace reaches the server's caches within seconds
            return None

    assert await eventually(first_run, what="the first registration") == sorted(SEARCH_ATTRIBUTES)
    custom = await _custom(temporal_client, namespace)
    for name in SEARCH_ATTRIBUTES:
        assert custom[name] == IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD
    assert await ensure_search_attributes(temporal_client, namespace=namespace) == []
    assert await _custom(temporal_client, namespace) == custom


async def test_an_attribute_of_another_type_stops_the_command(temporal_client: Client) -> None:
    # The session's server registered Cedar's attributes as keywords at start (the dev stack does the same).
    name = next(iter(SEARCH_ATTRIBUTES))
    assert await ensure_search_attributes(temporal_client) == []
    with pytest.raises(SearchAttributeConflict, match=name):
        await ensure_search_attributes(temporal_client, {name: "Int"})
