"""School-wide settings an admin changes at run time, each change audited."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.principal import Principal
from api.repositories import system_settings as repository
from api.repositories.audit import audit_write, snapshot
from api.repositories.base import delete_now, flush_or_conflict
from models import SystemSetting


async def put(session: AsyncSession, principal: Principal, key: str, value: Any, description: str) -> SystemSetting:
    """Creates the setting or replaces its value and description."""
    setting = await repository.find(session, key)
    before = snapshot(setting) if setting is not None else None
    if setting is None:
        setting = SystemSetting(key=key, value=value, description=description)
        session.add(setting)
    else:
        setting.value, setting.description = value, description
    setting.updated_at = datetime.now(UTC)
    await flush_or_conflict(session, f"the setting {key} was created concurrently; retry")
    action = "create" if before is None else "update"
    await audit_write(session, principal, action, "system_setting", key, before=before, after=snapshot(setting))
    return setting


async def delete(session: AsyncSession, principal: Principal, key: str) -> None:
    setting = await repository.setting(session, key)
    before = snapshot(setting)
    await delete_now(session, setting)
    await audit_write(session, principal, "delete", "system_setting", key, before=before)
