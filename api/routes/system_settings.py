"""``/api/v1/system-settings``: school-wide settings an admin changes at run time (admin only)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Path, Response

from api.deps import SessionDep
from api.pagination import Page, PageDep, SortOrder, page_of, sorting
from api.principal import AdminPrincipal
from api.repositories import system_settings as repository
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.catalog import SystemSettingOut, SystemSettingPut
from api.schemas.common import error_responses
from api.services import system_settings as service
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
    rows, total = await repository.list_settings(session, page, order)
    return page_of(rows, total, page)


@router.get("/{key}", response_model=SystemSettingOut, summary="One setting")
async def get_setting(session: SessionDep, principal: AdminPrincipal, key: SettingKey) -> SystemSetting:
    return await repository.setting(session, key)


@router.put("/{key}", response_model=SystemSettingOut, summary="Create or replace a setting")
async def put_setting(
    session: SessionDep, principal: AdminPrincipal, key: SettingKey, body: SystemSettingPut
) -> SystemSetting:
    return await service.put(session, principal, key, body.value, body.description)


@router.delete("/{key}", status_code=204, summary="Delete a setting")
async def delete_setting(session: SessionDep, principal: AdminPrincipal, key: SettingKey) -> Response:
    await service.delete(session, principal, key)
    return Response(status_code=204)
