"""``/api/v1/system-settings``: school-wide settings an admin changes at run time (admin only)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Path, Response
from sqlalchemy import select
from sqlmodel import col

from api.deps import SessionDep
from api.pagination import Page, PageDep, SortOrder, fetch_page, page_of, sorting
from api.principal import AdminPrincipal
from api.repositories.audit import audit_write, bind_request_id, snapshot
from api.repositories.base import flush_or_conflict, get_one
from api.routing import IndexedRouter
from api.schemas.catalog import SystemSettingOut, SystemSettingPut
from api.schemas.common import error_responses
from models import SystemSetting

router = IndexedRouter(
    prefix="/api/v1/system-settings",
    tags=["system-settings"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 409, 422),
)

SettingSort = Annotated[
    SortOrder, Depends(sorting({"key": SystemSetting.key, "updated_at": SystemSetting.updated_at}, "key"))
]
SettingKey = Annotated[str, Path(pattern=r"^[a-z0-9_.-]{1,100}$")]


@router.get("", response_model=Page[SystemSettingOut], summary="List the school's run-time settings")
async def list_settings(session: SessionDep, principal: AdminPrincipal, page: PageDep, order: SettingSort) -> Any:
    rows, total = await fetch_page(session, select(SystemSetting), page, order)
    return page_of(rows, total, page)


async def _setting(session: SessionDep, key: str) -> SystemSetting:
    setting: SystemSetting = await get_one(
        session, select(SystemSetting).where(col(SystemSetting.key) == key), "setting"
    )
    return setting


@router.get("/{key}", response_model=SystemSettingOut, summary="One setting")
async def get_setting(session: SessionDep, principal: AdminPrincipal, key: SettingKey) -> SystemSetting:
    return await _setting(session, key)


@router.put("/{key}", response_model=SystemSettingOut, summary="Create or replace a setting")
async def put_setting(
    session: SessionDep, principal: AdminPrincipal, key: SettingKey, body: SystemSettingPut
) -> SystemSetting:
    setting = await session.get(SystemSetting, key)
    before = snapshot(setting) if setting is not None else None
    if setting is None:
        setting = SystemSetting(key=key, value=body.value, description=body.description)
        session.add(setting)
    else:
        setting.value, setting.description = body.value, body.description
    setting.updated_at = datetime.now(UTC)
    await flush_or_conflict(session, f"the setting {key} was created concurrently; retry")
    action = "create" if before is None else "update"
    await audit_write(session, principal, action, "system_setting", key, before=before, after=snapshot(setting))
    return setting


@router.delete("/{key}", status_code=204, summary="Delete a setting")
async def delete_setting(session: SessionDep, principal: AdminPrincipal, key: SettingKey) -> Response:
    setting = await _setting(session, key)
    before = snapshot(setting)
    await session.delete(setting)
    await session.flush()
    await audit_write(session, principal, "delete", "system_setting", key, before=before)
    return Response(status_code=204)
