"""The iCalendar renderer: a standard parser (``icalendar``) reads what it writes, across DST and long lines."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import icalendar

from domain.ical import CalendarEvent, EventStatus, escape_text, fold, render_calendar

VANCOUVER = ZoneInfo("America/Vancouver")


def test_events_either_side_of_a_dst_change_keep_their_wall_clock_time() -> None:
    summer = datetime(2026, 10, 26, 16, tzinfo=VANCOUVER)  # PDT
    winter = datetime(2026, 11, 2, 16, tzinfo=VANCOUVER)  # PST, after 1 November
    changed = datetime(2026, 10, 1, tzinfo=UTC)
    events = [
        CalendarEvent(f"e{n}@cedar", "Lesson: Émilie, with Ana; piano", changed, at, at + timedelta(minutes=45))
        for n, at in enumerate((summer, winter))
    ]
    events.append(CalendarEvent("c@cedar", "School closed", changed, all_day=(date(2026, 12, 24), date(2026, 12, 26))))
    events.append(
        CalendarEvent(
            "x@cedar", "Lesson: Léa " * 20, changed, summer, summer + timedelta(hours=1), status=EventStatus.cancelled
        )
    )
    text = render_calendar("Cedar — lessons", VANCOUVER, events, datetime(2026, 10, 1, tzinfo=UTC))
    assert all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    parsed = icalendar.Calendar.from_ical(text)
    found = {str(event["UID"]): event for event in parsed.walk("VEVENT")}
    for uid, at in (("e0@cedar", summer), ("e1@cedar", winter)):
        start = found[uid].decoded("DTSTART")
        assert start == at
        assert start.astimezone(VANCOUVER).hour == 16
        assert str(found[uid]["SUMMARY"]) == "Lesson: Émilie, with Ana; piano"
    assert found["e0@cedar"].decoded("DTSTART").utcoffset() == timedelta(hours=-7)
    assert found["e1@cedar"].decoded("DTSTART").utcoffset() == timedelta(hours=-8)
    assert found["c@cedar"].decoded("DTEND") == date(2026, 12, 27)
    assert str(found["x@cedar"]["SUMMARY"]) == "Lesson: Léa " * 20
    assert str(found["x@cedar"]["STATUS"]) == "CANCELLED"


def test_text_is_escaped_and_folded() -> None:
    assert escape_text("a;b,c\\d\ne") == "a\\;b\\,c\\\\d\\ne"
    long = "SUMMARY:" + "é" * 80
    folded = fold(long)
    assert folded.replace("\r\n ", "") == long
    assert all(len(part.encode()) <= 75 for part in folded.split("\r\n"))
