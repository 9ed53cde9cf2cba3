"""The signed-in user's own profile: what each role may change of it, each change audited."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import CedarError
from api.principal import Principal
from api.repositories.auth import profile_row
from core.audit import record_audit
from models import Parent, Role, Teacher

EDITABLE = {
    Role.parent: {"first_name", "last_name", "phone"},
    Role.teacher: {"first_name", "last_name", "display_name", "bio"},
    Role.admin: set(),
}


async def update_profile(
    session: AsyncSession, principal: Principal, changes: dict[str, Any], request_id: str | None
) -> Parent | Teacher | None:
    """The profile row after ``changes``; a field the caller's role may not change is a 422, and a change to an
    account without a profile (an admin's) a 404."""
    refused = set(changes) - EDITABLE[principal.role]
    if refused:
        raise CedarError(
            422,
            "validation_error",
            "the request is invalid",
            dict.fromkeys(sorted(refused), f"a {principal.role} cannot change this field"),
        )
    row = await profile_row(session, principal, for_update=True)
    if changes and row is None:
        raise CedarError(404, "not_found", "this account has no profile to update")
    if row is not None and changes:
        before = row.model_dump(include=set(changes), mode="json")
        for name, value in changes.items():
            setattr(row, name, value)
        await record_audit(
            session,
            actor_user_id=principal.user_id,
            actor_role=principal.role,
            action="update",
            entity_type=type(row).__tablename__,
            entity_id=row.id,
            before=before,
            after=row.model_dump(include=set(changes), mode="json"),
            request_id=request_id,
        )
    return row
