"""Calendar feeds: a family's or a teacher's secret ``.ics`` URL, issued, shown, revoked, and rendered.

The URL's secret is an HMAC of the feed's id under a key derived from ``CEDAR_JWT_SECRET``; the database keeps
only its SHA-256, so a copy of the database alone opens no feed, while the owner's page can show the same URL
again. Revoking marks the row: the URL answers 404 at once, and a new feed (a new id) has a new secret.

What a feed shows is what its owner already sees: a family its children's lessons and demos (children's first
names, teachers' display names), a teacher their own lessons (students' first names), everyone the school's
closures. Cancelled lessons stay in the feed with ``STATUS:CANCELLED`` so calendar apps mark them; lessons on hold
(billing) are ``TENTATIVE``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from api.errors import CedarError
from api.principal import Principal
from api.repositories import calendar_feeds as repository
from api.repositories import parents, teachers
from api.repositories.audit import audit_write
from api.repositories.base import add_or_conflict
from core.settings import Settings
from core.tokens import hash_token
from domain.ical import CalendarEvent, EventStatus, render_calendar
from models import CalendarFeed, LessonKind, LessonStatus, Role

FEED_PATH = "/calendar/{secret}.ics"
# How far back a feed reaches: recent lessons stay visible; older ones drop out of the calendar app.
HISTORY = timedelta(days=90)
KIND_LABELS = {LessonKind.demo: "Demo lesson", LessonKind.regular: "Lesson", LessonKind.makeup: "Make-up lesson"}
STATUS_EVENTS = {
    LessonStatus.cancelled: EventStatus.cancelled,
    LessonStatus.suspended: EventStatus.tentative,
}
STATUS_NOTES = {
    LessonStatus.cancelled: "Cancelled.",
    LessonStatus.suspended: "On hold until the family's payment goes through.",
    LessonStatus.completed: "Taught.",
    LessonStatus.no_show: "Marked as missed.",
}


@dataclass(frozen=True)
class Owner:
    """Whose feed: a family (``parent_id``) or a teacher (``teacher_id``)."""

    parent_id: uuid.UUID | None = None
    teacher_id: uuid.UUID | None = None

    @property
    def entity(self) -> tuple[str, uuid.UUID]:
        if self.parent_id is not None:
            return "parent", self.parent_id
        assert self.teacher_id is not None
        return "teacher", self.teacher_id


@dataclass(frozen=True)
class FeedLink:
    url: str
    created_at: datetime


def feed_secret(settings: Settings, feed_id: uuid.UUID) -> str:
    key = hashlib.sha256(b"cedar-calendar-feed\x00" + settings.jwt_secret.encode()).digest()
    digest = hmac.new(key, feed_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _link(settings: Settings, feed: CalendarFeed) -> FeedLink | None:
    """The feed's URL, or None when it cannot be shown again (the key changed since: a new feed is needed)."""
    secret = feed_secret(settings, feed.id)
    if not hmac.compare_digest(hash_token(secret), feed.secret_hash):
        return None
    return FeedLink(settings.public_base_url.rstrip("/") + FEED_PATH.format(secret=secret), feed.created_at)


async def _check_owner(session: AsyncSession, principal: Principal, owner: Owner) -> None:
    """404 unless the principal may see the owner (a parent: their family; a teacher: themself; an admin: any)."""
    if owner.parent_id is not None:
        await parents.parent(session, principal, owner.parent_id)
    else:
        assert owner.teacher_id is not None
        await teachers.teacher(session, principal, owner.teacher_id)


def _own_only(principal: Principal, owner: Owner) -> None:
    """Only the family or the teacher see and issue their URL: an admin may revoke it, never read it."""
    role = Role.parent if owner.parent_id is not None else Role.teacher
    if principal.role != role:
        raise CedarError(403, "forbidden", f"only the {role} themself may see or issue this feed")


async def _active(session: AsyncSession, owner: Owner) -> CalendarFeed | None:
    return await repository.active_feed(session, parent_id=owner.parent_id, teacher_id=owner.teacher_id)


async def current(session: AsyncSession, settings: Settings, principal: Principal, owner: Owner) -> FeedLink | None:
    """The owner's feed URL, or None when they have none (or it can no longer be shown)."""
    _own_only(principal, owner)
    await _check_owner(session, principal, owner)
    feed = await _active(session, owner)
    return _link(settings, feed) if feed is not None else None


async def _revoke(session: AsyncSession, principal: Principal, feed: CalendarFeed) -> None:
    feed.revoked_at = datetime.now(UTC)
    await session.flush()
    entity, entity_id = Owner(feed.parent_id, feed.teacher_id).entity
    await audit_write(
        session,
        principal,
        "revoke",
        "calendar_feed",
        feed.id,
        after={entity + "_id": str(entity_id), "revoked_at": feed.revoked_at.isoformat()},
    )


async def issue(
    session: AsyncSession, settings: Settings, principal: Principal, owner: Owner, *, rotate: bool = False
) -> tuple[FeedLink, bool]:
    """The owner's feed, issued when there is none (or ``rotate``: the old URL stops working). ``(link, issued)``."""
    _own_only(principal, owner)
    await _check_owner(session, principal, owner)
    feed = await _active(session, owner)
    if feed is not None:
        link = _link(settings, feed)
        if link is not None and not rotate:
            return link, False
        await _revoke(session, principal, feed)
    feed = CalendarFeed(parent_id=owner.parent_id, teacher_id=owner.teacher_id, secret_hash="")
    feed.secret_hash = hash_token(feed_secret(settings, feed.id))
    await add_or_conflict(session, feed, "a feed was issued at the same moment; ask again")
    entity, entity_id = owner.entity
    await audit_write(session, principal, "create", "calendar_feed", feed.id, after={entity + "_id": str(entity_id)})
    link = _link(settings, feed)
    assert link is not None
    return link, True


async def revoke(session: AsyncSession, principal: Principal, owner: Owner) -> None:
    """Revoke the owner's feed (its URL is a 404 from now on); 404 when there is none."""
    await _check_owner(session, principal, owner)
    feed = await _active(session, owner)
    if feed is None:
        raise CedarError(404, "not_found", "there is no calendar feed to revoke")
    await _revoke(session, principal, feed)


def _lesson_event(item: repository.FeedLesson, family: bool) -> CalendarEvent:
    lesson = item.lesson
    kind = KIND_LABELS.get(LessonKind(lesson.kind), "Lesson")
    status = LessonStatus(lesson.status)
    if family:
        summary = f"{kind}: {item.student_first_name} with {item.teacher_display_name}"
    else:
        summary = f"{kind}: {item.student_first_name}"
    if status == LessonStatus.cancelled:
        summary = f"Cancelled — {summary}"
    return CalendarEvent(
        uid=f"lesson-{lesson.id}@cedar",
        summary=summary,
        last_modified=lesson.updated_at,
        starts_at=lesson.starts_at,
        ends_at=lesson.ends_at,
        description=STATUS_NOTES.get(status, ""),
        status=STATUS_EVENTS.get(status, EventStatus.confirmed),
    )


async def render(session: AsyncSession, settings: Settings, secret: str) -> str | None:
    """The feed's iCalendar text, read now from the database; None for an unknown or revoked secret."""
    if not 20 <= len(secret) <= 100:
        return None
    feed = await repository.live_feed_by_hash(session, hash_token(secret))
    if feed is None:
        return None
    now = datetime.now(UTC)
    since = now - HISTORY
    family = feed.parent_id is not None
    events = [_lesson_event(item, family) for item in await repository.lessons(session, feed, since)]
    for closure in await repository.closures(session, since.astimezone(settings.timezone).date()):
        events.append(
            CalendarEvent(
                uid=f"closure-{closure.id}@cedar",
                summary=f"School closed: {closure.reason}" if closure.reason else "School closed",
                last_modified=closure.created_at,
                all_day=(closure.start_date, closure.end_date),
            )
        )
    name = f"{settings.school_name} — {'lessons' if family else 'your lessons'}"
    return render_calendar(name, settings.timezone, events, now)
