"""Calendar feeds: issued, shown and revoked through the API; the feed parses as iCalendar (``icalendar``), shows
the owner's lessons, demos and the school's closures in the school's timezone, and follows moves and cancellations.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import icalendar
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory, transaction
from core.settings import Settings
from models import AcademicYear, AuditLog, CalendarFeed, Closure, Lesson, LessonKind
from tests.school_api.conftest import API, future_local


def _feed_path(url: str) -> str:
    return "/calendar/" + url.split("/calendar/", 1)[1]


async def _issue(api: httpx.AsyncClient, path: str, headers: dict[str, str], **body: Any) -> str:
    response = await api.post(path, json=body or None, headers=headers)
    assert response.status_code in (200, 201), response.text
    return _feed_path(response.json()["url"])


async def _calendar(api: httpx.AsyncClient, path: str) -> icalendar.Calendar:
    response = await api.get(path)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/calendar")
    return icalendar.Calendar.from_ical(response.content)


def _events(calendar: icalendar.Calendar) -> dict[str, icalendar.Component]:
    return {str(event["UID"]): event for event in calendar.walk("VEVENT")}


def _sequence(event: icalendar.Component) -> int:
    return int(event.decoded("SEQUENCE"))


def _uid(lesson: Lesson) -> str:
    return f"lesson-{lesson.id}@cedar"


async def test_a_family_feed_shows_its_lessons_demos_and_closures_in_the_school_timezone(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family, other_family, teacher = await make_family(children=2), await make_family(), await make_teacher()
    first, second = family.students
    start = future_local(settings, 10, 16)
    lesson = await add_lesson(teacher.teacher, first, start)
    sibling = await add_lesson(teacher.teacher, second, start + timedelta(hours=1))
    others = await add_lesson(teacher.teacher, other_family.students[0], start + timedelta(hours=2))
    async with transaction(sessions) as session:
        demo = Lesson(
            kind=LessonKind.demo,
            teacher_id=teacher.teacher.id,
            student_id=first.id,
            starts_at=start + timedelta(days=1),
            ends_at=start + timedelta(days=1, minutes=30),
        )
        year = AcademicYear(name="feed-year", start_date=date(2000, 1, 1), end_date=date(2100, 1, 1))
        session.add_all([demo, year])
        await session.flush()
        closed = start.astimezone(settings.timezone).date() + timedelta(days=3)
        closure = Closure(
            academic_year_id=year.id, start_date=closed, end_date=closed + timedelta(days=1), reason="Winter, break"
        )
        session.add(closure)

    path = f"{API}/parents/{family.parent.id}/calendar-feed"
    assert (await api.get(path, headers=family.headers)).status_code == 404
    created = await api.post(path, headers=family.headers)
    assert created.status_code == 201, created.text
    url = created.json()["url"]
    assert url.startswith(settings.public_base_url)
    assert url.endswith(".ics")
    again = await api.post(path, headers=family.headers)
    assert again.status_code == 200
    assert again.json()["url"] == url
    assert (await api.get(path, headers=family.headers)).json()["url"] == url

    calendar = await _calendar(api, _feed_path(url))
    events = _events(calendar)
    assert set(events) == {_uid(lesson), _uid(sibling), _uid(demo), f"closure-{closure.id}@cedar"}
    assert _uid(others) not in events
    event = events[_uid(lesson)]
    starts = event.decoded("DTSTART")
    assert isinstance(starts.tzinfo, ZoneInfo) or str(starts.tzinfo) == settings.school_timezone
    assert event["DTSTART"].params["TZID"] == settings.school_timezone
    assert starts == start
    assert starts.astimezone(settings.timezone).hour == 16
    assert event.decoded("DTEND") == start + timedelta(minutes=30)
    assert str(event["SUMMARY"]) == f"Lesson: {first.first_name} with {teacher.teacher.display_name}"
    assert str(events[_uid(demo)]["SUMMARY"]).startswith("Demo lesson: ")
    assert str(event["STATUS"]) == "CONFIRMED"
    day_off = events[f"closure-{closure.id}@cedar"]
    assert day_off.decoded("DTSTART") == closed
    assert day_off.decoded("DTEND") == closed + timedelta(days=2)
    assert str(day_off["SUMMARY"]) == "School closed: Winter, break"
    assert [str(tz["TZID"]) for tz in calendar.walk("VTIMEZONE")] == [settings.school_timezone]
    # Nothing personal beyond what the family sees: no surnames, no teacher's email.
    text = (await api.get(_feed_path(url))).text
    assert first.last_name not in text
    assert teacher.teacher.last_name not in text
    assert teacher.teacher.email not in text


async def test_a_teacher_feed_shows_only_their_lessons_and_first_names(
    api: httpx.AsyncClient,
    settings: Settings,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family, teacher, colleague = await make_family(), await make_teacher(), await make_teacher()
    start = future_local(settings, 12, 17)
    mine = await add_lesson(teacher.teacher, family.students[0], start)
    theirs = await add_lesson(colleague.teacher, family.students[0], start + timedelta(days=1))
    feed = await _issue(api, f"{API}/teachers/{teacher.teacher.id}/calendar-feed", teacher.headers)
    events = _events(await _calendar(api, feed))
    assert set(events) == {_uid(mine)}
    assert _uid(theirs) not in events
    assert str(events[_uid(mine)]["SUMMARY"]) == f"Lesson: {family.students[0].first_name}"
    assert family.students[0].last_name not in (await api.get(feed)).text
    # Another teacher's feed, or a family's, is not theirs to see or issue.
    assert (
        await api.get(f"{API}/teachers/{colleague.teacher.id}/calendar-feed", headers=teacher.headers)
    ).status_code == 404
    assert (
        await api.post(f"{API}/parents/{family.parent.id}/calendar-feed", headers=teacher.headers)
    ).status_code == 403


async def test_the_feed_follows_a_move_and_a_cancellation(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family, teacher = await make_family(), await make_teacher()
    start = future_local(settings, 9, 15)
    lesson = await add_lesson(teacher.teacher, family.students[0], start)
    async with transaction(sessions) as session:  # booked an hour ago: SEQUENCE counts seconds
        booked = await session.get(Lesson, lesson.id)
        assert booked is not None
        booked.updated_at = datetime.now(UTC) - timedelta(hours=1)
    feed = await _issue(api, f"{API}/parents/{family.parent.id}/calendar-feed", family.headers)
    before = _events(await _calendar(api, feed))[_uid(lesson)]

    moved_to = start + timedelta(days=1, hours=1)
    moved = await api.post(
        f"{API}/lessons/{lesson.id}/reschedule", json={"starts_at": moved_to.isoformat()}, headers=teacher.headers
    )
    assert moved.status_code == 200, moved.text
    after = _events(await _calendar(api, feed))[_uid(lesson)]
    assert after.decoded("DTSTART") == moved_to
    assert after.decoded("DTEND") == moved_to + timedelta(minutes=30)
    assert _sequence(after) > _sequence(before)
    assert after.decoded("LAST-MODIFIED") > before.decoded("LAST-MODIFIED")

    cancelled = await api.post(f"{API}/lessons/{lesson.id}/cancel", json={"reason": "ill"}, headers=family.headers)
    assert cancelled.status_code == 200, cancelled.text
    gone = _events(await _calendar(api, feed))[_uid(lesson)]
    assert str(gone["STATUS"]) == "CANCELLED"
    assert _sequence(gone) >= _sequence(after)
    assert gone.decoded("DTSTART") == moved_to


async def test_a_revoked_feed_is_404_at_once_and_a_new_one_can_be_issued(
    api: httpx.AsyncClient,
    sessions: SessionFactory,
    auth_headers: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
) -> None:
    family, teacher = await make_family(), await make_teacher()
    path = f"{API}/parents/{family.parent.id}/calendar-feed"
    old = await _issue(api, path, family.headers)
    assert (await api.get(old)).status_code == 200
    assert (await api.delete(path, headers=family.headers)).status_code == 204
    assert (await api.get(old)).status_code == 404
    assert (await api.get(path, headers=family.headers)).status_code == 404
    assert (await api.delete(path, headers=family.headers)).status_code == 404

    new = await _issue(api, path, family.headers)
    assert new != old
    assert (await api.get(new)).status_code == 200
    rotated = await _issue(api, path, family.headers, rotate=True)
    assert rotated != new
    assert (await api.get(new)).status_code == 404
    assert (await api.get(rotated)).status_code == 200

    # An admin revokes anyone's feed (and may not read its URL).
    admin = await auth_headers("admin")
    teacher_path = f"{API}/teachers/{teacher.teacher.id}/calendar-feed"
    teacher_feed = await _issue(api, teacher_path, teacher.headers)
    assert (await api.get(teacher_path, headers=admin)).status_code == 403
    assert (await api.delete(teacher_path, headers=admin)).status_code == 204
    assert (await api.delete(path, headers=admin)).status_code == 204
    assert (await api.get(teacher_feed)).status_code == 404
    assert (await api.get(rotated)).status_code == 404
    assert (await api.get("/calendar/not-a-feed-at-all-but-long-enough.ics")).status_code == 404

    async with transaction(sessions) as session:
        hashes = list(await session.scalars(select(col(CalendarFeed.secret_hash))))
        actions = set(
            await session.scalars(select(col(AuditLog.action)).where(col(AuditLog.entity_type) == "calendar_feed"))
        )
    # Only hashes are stored: no URL's secret is in the table.
    assert len(hashes) == 4
    for secret in (old, new, rotated, teacher_feed):
        assert secret.removeprefix("/calendar/").removesuffix(".ics") not in hashes
    assert {"create", "revoke"} <= actions


async def test_bad_input_is_a_field_level_422(
    api: httpx.AsyncClient, make_family: Callable[..., Any], make_teacher: Callable[..., Any]
) -> None:
    family, teacher = await make_family(), await make_teacher()
    bad_id = await api.post(f"{API}/parents/not-a-uuid/calendar-feed", headers=family.headers)
    assert bad_id.status_code == 422
    assert "parent_id" in bad_id.json()["fields"]
    path = f"{API}/parents/{family.parent.id}/calendar-feed"
    bad_flag = await api.post(path, json={"rotate": "sometimes"}, headers=family.headers)
    assert bad_flag.status_code == 422
    assert "rotate" in bad_flag.json()["fields"]
    unknown = await api.post(path, json={"rotate": True, "colour": "red"}, headers=family.headers)
    assert unknown.status_code == 422
    assert "colour" in unknown.json()["fields"]
    teacher_bad = await api.delete(f"{API}/teachers/123/calendar-feed", headers=teacher.headers)
    assert teacher_bad.status_code == 422
    assert "teacher_id" in teacher_bad.json()["fields"]


def test_sequence_grows_with_each_change() -> None:
    from domain.ical import sequence_of

    at = datetime(2026, 12, 1, 16, tzinfo=UTC)
    assert sequence_of(at + timedelta(seconds=1)) > sequence_of(at) > 0
