"""`./cedar run`'s Temporal UI asks Cedar's codec server to open payloads."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from core.settings import Settings
from devstack.ports import free_port
from devstack.stack import plan


def test_the_dev_servers_ui_uses_the_apis_codec_endpoint(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path,
        temporal_port=free_port(),
        temporal_ui_port=free_port(),
        api_port=free_port(),
    )
    server = plan(settings).temporal
    assert server is not None
    server.start()
    try:
        assert server.ui_url is not None
        with urllib.request.urlopen(f"{server.ui_url}/api/v1/settings", timeout=10) as answer:  # noqa: S310
            codec = json.loads(answer.read())["Codec"]
    finally:
        server.stop()
    assert codec["Endpoint"] == f"http://{settings.host}:{settings.api_port}/codec"
    assert settings.effective_temporal_ui_origin == f"http://{settings.host}:{settings.temporal_ui_port}"
