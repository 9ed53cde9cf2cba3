"""Lists: limit/offset pages with a maximum size, and sorting on a whitelist of fields.

``?limit=20&offset=40&sort=-starts_at`` — a leading ``-`` sorts descending. Filters are each route's own query
parameters, so only the fields a route names can be filtered on.
"""

from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

NameSearch = Annotated[str | None, Query(max_length=100, description="part of the first or last name")]
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    data: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True)
class PageParams:
    limit: int
    offset: int


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE, description=f"page size, at most {MAX_PAGE_SIZE}")] = (
        DEFAULT_PAGE_SIZE
    ),
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> PageParams:
    return PageParams(limit, offset)


# The dependencies here are async on purpose: FastAPI runs a sync dependency in its thread pool, a thread hop
# per request that costs more than the function itself under load.
PageDep = Annotated[PageParams, Depends(page_params)]


@dataclass(frozen=True)
class SortOrder:
    """The ORDER BY a request asked for, already checked against the route's whitelist."""

    columns: tuple[Any, ...]


def sorting(
    allowed: Mapping[str, InstrumentedAttribute[Any]], default: str
) -> Callable[..., Coroutine[Any, Any, SortOrder]]:
    """A dependency reading ``?sort=`` for one route: only ``allowed`` names (optionally ``-`` prefixed) pass.

    The primary key breaks ties so that pages never repeat or skip rows. (This module has no postponed
    annotations: the query parameter's annotation must be evaluated here, where ``pattern`` is defined.)
    """
    pattern = "^-?(" + "|".join(sorted(allowed)) + ")$"
    names = ", ".join(sorted(allowed))

    async def dependency(
        sort: Annotated[str, Query(pattern=pattern, description=f"one of {names}; prefix - to sort descending")] = (
            default
        ),
    ) -> SortOrder:
        column = allowed[sort.lstrip("-")]
        ordered = column.desc() if sort.startswith("-") else column.asc()
        tie_breaker = next(iter(column.class_.__table__.primary_key.columns))
        return SortOrder((ordered, tie_breaker.asc()))

    return dependency


async def fetch_page(
    session: AsyncSession, query: Select[Any], page: PageParams, order: SortOrder
) -> tuple[Sequence[Any], int]:
    """The rows of one page of ``query`` (a single-entity select) and the total count of rows matching it.

    The total rides along as a window count, so a page costs one round trip; only a page past the end, which
    has no row to carry it, needs a separate count.
    """
    counted = query.add_columns(func.count().over().label("total_rows"))
    result = await session.execute(counted.order_by(*order.columns).limit(page.limit).offset(page.offset))
    rows = result.all()
    if rows:
        return [row[0] for row in rows], int(rows[0].total_rows)
    if page.offset == 0:
        return [], 0
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    return [], int(total or 0)


def page_of(rows: Sequence[Any], total: int, page: PageParams) -> dict[str, Any]:
    """The response body of one page. The rows stay ORM objects: the route's ``response_model`` converts them
    once (its item schema reads attributes), which spares a converted copy made here."""
    return {"data": rows, "total": total, "limit": page.limit, "offset": page.offset}
