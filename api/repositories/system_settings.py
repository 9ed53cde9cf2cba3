"""The school's run-time settings rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from api.pagination import PageParams, SortOrder, fetch_page
from api.repositories.base import get_one
from models import SystemSetting


async def list_settings(session: AsyncSession, page: PageParams, order: SortOrder) -> tuple[Sequence[Any], int]:
    return await fetch_page(session, select(SystemSetting), page, order)


async def setting(session: AsyncSession, key: str) -> SystemSetting:
    """The setting; 404 when there is none."""
    found: SystemSetting = await get_one(session, select(SystemSetting).where(col(SystemSetting.key) == key), "setting")
    return found


async def find(session: AsyncSession, key: str) -> SystemSetting | None:
    return await session.get(SystemSetting, key)
