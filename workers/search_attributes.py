"""Cedar's custom search attributes (core/temporal.py ``SEARCH_ATTRIBUTES``) registered in the namespace:
``python -m workers.search_attributes``, run at each deploy before the workers (compose's and k8s's set-up job).

Idempotent: it lists the namespace's custom attributes and adds only the missing ones, so a second run changes
nothing. An attribute that exists with another type stops the command (a type cannot be changed in place).
Temporal Cloud registers search attributes through its own control plane (tcld or the web UI), not this API.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client

from core.logging import configure_logging
from core.process import exit_after
from core.settings import Settings
from core.temporal import SEARCH_ATTRIBUTES, connect_temporal

log = logging.getLogger("cedar.search_attributes")

# The dev server's spelling (``--search-attribute Name=Keyword``) to the API's enum.
_TYPES: dict[str, IndexedValueType.ValueType] = {
    "Text": IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
    "Keyword": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Int": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "Double": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "Bool": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "Datetime": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "KeywordList": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
}


class SearchAttributeConflict(RuntimeError):
    """An attribute Cedar needs exists in the namespace with another type."""


async def ensure_search_attributes(
    client: Client, wanted: Mapping[str, str] = SEARCH_ATTRIBUTES, namespace: str | None = None
) -> list[str]:
    """Adds the attributes of ``wanted`` (name -> type) that the namespace lacks; returns the names added."""
    namespace = namespace or client.namespace
    listed = await client.operator_service.list_search_attributes(ListSearchAttributesRequest(namespace=namespace))
    existing = dict(listed.custom_attributes)
    conflicts = [
        f"{name} is {IndexedValueType.Name(existing[name])}, Cedar needs {kind}"
        for name, kind in wanted.items()
        if name in existing and existing[name] != _TYPES[kind]
    ]
    if conflicts:
        raise SearchAttributeConflict("; ".join(conflicts))
    missing = {name: _TYPES[kind] for name, kind in wanted.items() if name not in existing}
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=namespace, search_attributes=missing)
        )
    for name in wanted:
        log.info("search attribute %s %s", name, "added" if name in missing else "exists")
    return sorted(missing)


async def _main(settings: Settings) -> None:
    client = await connect_temporal(settings)
    added = await ensure_search_attributes(client)
    print(f"search attributes added: {', '.join(added) or 'none'}")


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    asyncio.run(_main(settings))
    exit_after(0)


if __name__ == "__main__":
    main()
