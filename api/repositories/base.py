"""Small helpers every repository uses: fetch-or-404, ownership predicates, writes that may conflict."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, false
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import CedarError, Conflict, NotFound


async def get_one(session: AsyncSession, query: Select[Any], what: str) -> Any:
    """The single row of a principal-scoped query; a row outside the scope is simply not found (404)."""
    row = await session.scalar(query)
    if row is None:
        raise NotFound(what)
    return row


def owned_by(column: Any, owner_id: object | None) -> ColumnElement[bool]:
    """``column = owner_id``, or a predicate matching nothing when the caller owns nothing of this kind."""
    return column == owner_id if owner_id is not None else false()


async def flush_or_conflict(session: AsyncSession, detail: str) -> None:
    """Flush pending writes; a unique or foreign-key violation becomes a 409 with ``detail``."""
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(detail) from exc


def invalid(field: str, message: str) -> CedarError:
    """A 422 about one field that only the database can check (an unknown instrument, a date outside a year)."""
    return CedarError(422, "validation_error", "the request is invalid", {field: message})


def forbidden_fields(fields: set[str]) -> CedarError:
    names = ", ".join(sorted(fields))
    return CedarError(
        403, "forbidden", f"your role may not change {names}", dict.fromkeys(sorted(fields), "not allowed")
    )


async def add_or_conflict(session: AsyncSession, row: object, detail: str) -> None:
    """Insert ``row`` now; a unique or foreign-key violation becomes a 409 with ``detail``."""
    session.add(row)
    await flush_or_conflict(session, detail)


async def delete_now(session: AsyncSession, row: object) -> None:
    """Delete ``row`` now (its dependants go with it where the schema cascades)."""
    await session.delete(row)
    await session.flush()


async def delete_or_conflict(session: AsyncSession, row: object, detail: str) -> None:
    """Delete ``row``; when other records still point at it, a 409 with ``detail`` instead."""
    await session.delete(row)
    await flush_or_conflict(session, detail)


def apply_changes(row: object, changes: dict[str, Any]) -> None:
    for name, value in changes.items():
        setattr(row, name, value)
