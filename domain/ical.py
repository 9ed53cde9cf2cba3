"""iCalendar (RFC 5545) text for the calendar feeds: events in the school's timezone, with its VTIMEZONE.

Plain functions, no I/O: the feed's rows come in as :class:`CalendarEvent` and leave as one ``text/calendar``
document. Times are written as local wall-clock times with ``TZID`` (the school's zone), and the zone's
definition (its offsets and daylight-saving transitions over the feed's span) is written beside them, so every
calendar app shows the school's times whatever the reader's own zone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from domain.calendar import require_aware

PRODID = "-//Cedar//Calendar feeds//EN"
# SEQUENCE counts seconds from this instant to the row's last change: it only grows, as RFC 5545 asks.
SEQUENCE_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
LINE_OCTETS = 75


class EventStatus(StrEnum):
    confirmed = "CONFIRMED"
    tentative = "TENTATIVE"
    cancelled = "CANCELLED"


@dataclass(frozen=True)
class CalendarEvent:
    """A timed event (aware ``starts_at``/``ends_at``) or an all-day one (``all_day``: dates, ``end_day`` inclusive)."""

    uid: str
    summary: str
    last_modified: datetime
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    all_day: tuple[date, date] | None = None
    description: str = ""
    status: EventStatus = EventStatus.confirmed


def sequence_of(last_modified: datetime) -> int:
    """The event's SEQUENCE: whole seconds since 2000 of its last change, so each change raises it."""
    require_aware(last_modified, "last_modified")
    return max(0, int((last_modified - SEQUENCE_EPOCH).total_seconds()))


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 3.3.11): backslash, semicolon, comma and newlines escaped."""
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\r\n", "\\n").replace("\r", "\\n").replace("\n", "\\n")


def fold(line: str) -> str:
    """One content line folded at 75 octets, never inside a UTF-8 character (RFC 5545 3.1)."""
    parts: list[str] = []
    current = ""
    size = 0
    limit = LINE_OCTETS
    for char in line:
        width = len(char.encode())
        if size + width > limit:
            parts.append(current)
            current, size, limit = "", 0, LINE_OCTETS - 1  # continuation lines start with one space
        current += char
        size += width
    parts.append(current)
    return "\r\n ".join(parts)


def _utc(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _local(at: datetime, tz: ZoneInfo) -> str:
    return at.astimezone(tz).strftime("%Y%m%dT%H%M%S")


def _offset(delta: timedelta | None) -> str:
    seconds = int((delta or timedelta(0)).total_seconds())
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    return f"{sign}{hours:02d}{minutes:02d}" + (f"{secs:02d}" if secs else "")


def _transitions(tz: ZoneInfo, start: datetime, end: datetime) -> list[datetime]:
    """The UTC instants in [start, end) where the zone's offset changes (found by the day, then to the second)."""
    found: list[datetime] = []
    step = timedelta(days=1)
    at = start
    while at < end:
        following = min(at + step, end)
        if at.astimezone(tz).utcoffset() != following.astimezone(tz).utcoffset():
            low, high = at, following
            while high - low > timedelta(seconds=1):
                middle = low + (high - low) / 2
                if middle.astimezone(tz).utcoffset() == low.astimezone(tz).utcoffset():
                    low = middle
                else:
                    high = middle
            found.append(high.replace(microsecond=0))
        at = following
    return found


def vtimezone(tz: ZoneInfo, start: datetime, end: datetime) -> list[str]:
    """The zone's VTIMEZONE over [start, end): its offset at ``start``, then each transition in the span."""
    require_aware(start, "start")
    require_aware(end, "end")
    lines = ["BEGIN:VTIMEZONE", f"TZID:{tz.key}"]
    first = start.astimezone(tz)
    changes: list[tuple[datetime, timedelta | None, timedelta | None]] = [(start, first.utcoffset(), first.utcoffset())]
    for at in _transitions(tz, start, end):
        before = (at - timedelta(seconds=1)).astimezone(tz).utcoffset()
        changes.append((at, before, at.astimezone(tz).utcoffset()))
    for at, offset_from, offset_to in changes:
        local = at.astimezone(tz)
        kind = "DAYLIGHT" if local.dst() else "STANDARD"
        wall = (at.astimezone(UTC) + (offset_from or timedelta(0))).strftime("%Y%m%dT%H%M%S")
        lines += [
            f"BEGIN:{kind}",
            f"DTSTART:{wall}",
            f"TZOFFSETFROM:{_offset(offset_from)}",
            f"TZOFFSETTO:{_offset(offset_to)}",
            f"TZNAME:{escape_text(local.tzname() or tz.key)}",
            f"END:{kind}",
        ]
    lines.append("END:VTIMEZONE")
    return lines


def _event_lines(event: CalendarEvent, tz: ZoneInfo) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{escape_text(event.uid)}",
        f"DTSTAMP:{_utc(event.last_modified)}",
        f"LAST-MODIFIED:{_utc(event.last_modified)}",
        f"SEQUENCE:{sequence_of(event.last_modified)}",
    ]
    if event.all_day is not None:
        first, last = event.all_day
        lines += [
            f"DTSTART;VALUE=DATE:{first:%Y%m%d}",
            f"DTEND;VALUE=DATE:{last + timedelta(days=1):%Y%m%d}",
            "TRANSP:TRANSPARENT",
        ]
    else:
        assert event.starts_at is not None
        assert event.ends_at is not None
        require_aware(event.starts_at, "starts_at")
        require_aware(event.ends_at, "ends_at")
        lines += [
            f"DTSTART;TZID={tz.key}:{_local(event.starts_at, tz)}",
            f"DTEND;TZID={tz.key}:{_local(event.ends_at, tz)}",
        ]
    lines += [f"SUMMARY:{escape_text(event.summary)}", f"STATUS:{event.status.value}"]
    if event.description:
        lines.append(f"DESCRIPTION:{escape_text(event.description)}")
    lines.append("END:VEVENT")
    return lines


def _span(events: Sequence[CalendarEvent], tz: ZoneInfo, now: datetime) -> tuple[datetime, datetime]:
    """From a year before the first event (or now) to a year after the last: what the VTIMEZONE must cover."""
    instants = [now]
    for event in events:
        if event.all_day is not None:
            instants += [datetime.combine(day, datetime.min.time(), tzinfo=tz) for day in event.all_day]
        if event.starts_at is not None:
            instants.append(event.starts_at)
        if event.ends_at is not None:
            instants.append(event.ends_at)
    first = min(instants).astimezone(UTC)
    last = max(instants).astimezone(UTC)
    return datetime(first.year - 1, 1, 1, tzinfo=UTC), datetime(last.year + 2, 1, 1, tzinfo=UTC)


def render_calendar(name: str, tz: ZoneInfo, events: Iterable[CalendarEvent], now: datetime) -> str:
    """The whole ``VCALENDAR`` (CRLF line ends, folded lines) of ``events``, named ``name``."""
    require_aware(now, "now")
    listed = list(events)
    start, end = _span(listed, tz, now)
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
        f"X-WR-TIMEZONE:{tz.key}",
        "REFRESH-INTERVAL;VALUE=DURATION:PT1H",
        "X-PUBLISHED-TTL:PT1H",
        *vtimezone(tz, start, end),
    ]
    for event in listed:
        lines += _event_lines(event, tz)
    lines.append("END:VCALENDAR")
    return "".join(fold(line) + "\r\n" for line in lines)
