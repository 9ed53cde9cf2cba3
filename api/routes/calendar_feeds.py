"""Calendar feeds (``api/services/calendar_feeds.py``): a family's and a teacher's secret ``.ics`` URL.

``GET|POST|DELETE /api/v1/parents/{id}/calendar-feed`` (the parent; an admin may revoke) and
``/api/v1/teachers/{id}/calendar-feed`` (the teacher; an admin may revoke) show, issue and revoke it;
``GET /calendar/{secret}.ics`` is the feed itself, for whoever holds the URL (a calendar app), 404 once revoked.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Response
from fastapi.responses import PlainTextResponse

from api.deps import SessionDep, SettingsDep
from api.errors import CedarError
from api.principal import Principal, require_roles
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.calendar_feeds import CalendarFeedIssue, CalendarFeedOut
from api.schemas.common import error_responses
from api.services import calendar_feeds as service
from api.services.calendar_feeds import FeedLink, Owner
from models import Role

router = IndexedRouter(
    prefix="/api/v1",
    tags=["calendar-feeds"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 422),
)
feed_router = IndexedRouter(tags=["calendar-feeds"])

ParentPrincipal = Annotated[Principal, Depends(require_roles(Role.parent))]
TeacherPrincipal = Annotated[Principal, Depends(require_roles(Role.teacher))]
ParentOrAdmin = Annotated[Principal, Depends(require_roles(Role.parent, Role.admin))]
TeacherOrAdmin = Annotated[Principal, Depends(require_roles(Role.teacher, Role.admin))]


def _found(link: FeedLink | None) -> FeedLink:
    if link is None:
        raise CedarError(404, "not_found", "there is no calendar feed yet: POST to issue one")
    return link


async def _issue(
    session: SessionDep, settings: SettingsDep, principal: Principal, owner: Owner, body: CalendarFeedIssue | None
) -> tuple[FeedLink, int]:
    link, issued = await service.issue(session, settings, principal, owner, rotate=bool(body and body.rotate))
    return link, 201 if issued else 200


@router.get(
    "/parents/{parent_id}/calendar-feed", response_model=CalendarFeedOut, summary="The family's calendar feed URL"
)
async def get_family_feed(
    session: SessionDep, settings: SettingsDep, principal: ParentPrincipal, parent_id: uuid.UUID
) -> FeedLink:
    return _found(await service.current(session, settings, principal, Owner(parent_id=parent_id)))


@router.post(
    "/parents/{parent_id}/calendar-feed",
    response_model=CalendarFeedOut,
    status_code=201,
    summary="Issue the family's calendar feed (200 with the current one when it exists and rotate is false)",
)
async def issue_family_feed(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: ParentPrincipal,
    parent_id: uuid.UUID,
    body: CalendarFeedIssue | None = None,
) -> FeedLink:
    link, response.status_code = await _issue(session, settings, principal, Owner(parent_id=parent_id), body)
    return link


@router.delete("/parents/{parent_id}/calendar-feed", status_code=204, summary="Revoke the family's calendar feed")
async def revoke_family_feed(session: SessionDep, principal: ParentOrAdmin, parent_id: uuid.UUID) -> Response:
    await service.revoke(session, principal, Owner(parent_id=parent_id))
    return Response(status_code=204)


@router.get(
    "/teachers/{teacher_id}/calendar-feed", response_model=CalendarFeedOut, summary="The teacher's calendar feed URL"
)
async def get_teacher_feed(
    session: SessionDep, settings: SettingsDep, principal: TeacherPrincipal, teacher_id: uuid.UUID
) -> FeedLink:
    return _found(await service.current(session, settings, principal, Owner(teacher_id=teacher_id)))


@router.post(
    "/teachers/{teacher_id}/calendar-feed",
    response_model=CalendarFeedOut,
    status_code=201,
    summary="Issue the teacher's calendar feed (200 with the current one when it exists and rotate is false)",
)
async def issue_teacher_feed(
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: TeacherPrincipal,
    teacher_id: uuid.UUID,
    body: CalendarFeedIssue | None = None,
) -> FeedLink:
    link, response.status_code = await _issue(session, settings, principal, Owner(teacher_id=teacher_id), body)
    return link


@router.delete("/teachers/{teacher_id}/calendar-feed", status_code=204, summary="Revoke the teacher's calendar feed")
async def revoke_teacher_feed(session: SessionDep, principal: TeacherOrAdmin, teacher_id: uuid.UUID) -> Response:
    await service.revoke(session, principal, Owner(teacher_id=teacher_id))
    return Response(status_code=204)


@feed_router.get(
    service.FEED_PATH,
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/calendar": {}}}, 404: {"description": "unknown or revoked"}},
    summary="A calendar feed (iCalendar), for whoever holds its secret URL",
)
async def calendar_feed(session: SessionDep, settings: SettingsDep, secret: str) -> Response:
    text = await service.render(session, settings, secret)
    if text is None:
        raise CedarError(404, "not_found", "no such calendar feed")
    return Response(
        text,
        media_type="text/calendar; charset=utf-8",
        headers={"Cache-Control": "private, no-store", "Content-Disposition": 'inline; filename="cedar.ics"'},
    )
