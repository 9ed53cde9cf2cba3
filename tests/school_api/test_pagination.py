"""Lists: page size limits, whitelisted sorting, filters, and pages that neither repeat nor skip rows."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from api.pagination import MAX_PAGE_SIZE
from models import Role
from tests.school_api.conftest import API


async def test_page_size_is_capped_and_sort_fields_are_whitelisted(
    api: httpx.AsyncClient, auth_headers: Callable[..., Any]
) -> None:
    admin = await auth_headers(Role.admin)
    too_big = await api.get(f"{API}/students", params={"limit": MAX_PAGE_SIZE + 1}, headers=admin)
    assert too_big.status_code == 422
    assert "limit" in too_big.json()["fields"]
    negative = await api.get(f"{API}/students", params={"offset": -1}, headers=admin)
    assert negative.status_code == 422
    assert "offset" in negative.json()["fields"]
    unknown_sort = await api.get(f"{API}/students", params={"sort": "parent_id"}, headers=admin)
    assert unknown_sort.status_code == 422
    assert "sort" in unknown_sort.json()["fields"]
    injection = await api.get(f"{API}/students", params={"sort": "last_name; drop table students"}, headers=admin)
    assert injection.status_code == 422


async def test_pages_cover_every_row_once_in_order(
    api: httpx.AsyncClient, make_family: Callable[..., Any], auth_headers: Callable[..., Any]
) -> None:
    families = [await make_family(children=2) for _ in range(3)]
    admin = await auth_headers(Role.admin)
    seen: list[dict[str, Any]] = []
    for offset in range(0, 6, 4):
        page = await api.get(
            f"{API}/students", params={"limit": 4, "offset": offset, "sort": "-date_of_birth"}, headers=admin
        )
        assert page.status_code == 200
        body = page.json()
        assert (body["total"], body["limit"], body["offset"]) == (6, 4, offset)
        seen += body["data"]
    assert len(seen) == 6
    assert len({row["id"] for row in seen}) == 6
    past_the_end = (await api.get(f"{API}/students", params={"offset": 50}, headers=admin)).json()
    assert (past_the_end["data"], past_the_end["total"]) == ([], 6)
    births = [row["date_of_birth"] for row in seen]
    assert births == sorted(births, reverse=True)

    one_family = await api.get(f"{API}/students", params={"parent_id": str(families[1].parent.id)}, headers=admin)
    assert {row["id"] for row in one_family.json()["data"]} == {str(s.id) for s in families[1].students}
    by_name = await api.get(f"{API}/students", params={"name": families[2].parent.last_name[-8:]}, headers=admin)
    assert by_name.json()["total"] == 2
