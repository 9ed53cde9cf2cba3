from __future__ import annotations

from pathlib import Path

import httpx
from temporalio.client import Client

from devstack.ports import free_port
from devstack.temporal import TemporalDevServer


async def test_a_client_connects_and_search_attributes_exist(tmp_path: Path) -> None:
    server = TemporalDevServer(
        free_port(),
        free_port(),
        tmp_path / "temporal.db",
        tmp_path / "logs",
        dynamic_config={"limit.historyCount.suggestContinueAsNew": "200"},
        search_attributes={"CedarDevstackTest": "Keyword"},
    )
    server.start()
    try:
        client = await Client.connect(server.address)
        assert await client.service_client.check_health()
        from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

        listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace="default"))
        assert "CedarDevstackTest" in listed.custom_attributes
        assert server.ui_url is not None
        async with httpx.AsyncClient(timeout=5) as http:
            assert (await http.get(server.ui_url)).status_code == 200
    finally:
        server.stop()
    assert not server.is_running()
    assert (tmp_path / "temporal.db").exists()
