"""Choosing a teacher for a new student."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction

from domain.calendar import WeeklyWindow, require_aware
from domain.slots import overlapping_windows

__all__ = ["TeacherCandidate", "is_eligible", "rank_teachers"]

# Sorts after every real slot, so candidates without a known slot come last.
_NO_SLOT = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TeacherCandidate:
    """What matching needs to know about one teacher (ids are strings: pass ``str(uuid)``)."""

    teacher_id: str
    instruments: frozenset[str]
    active: bool
    capacity: int
    active_students: int
    availability: Sequence[WeeklyWindow]
    earliest_slot: datetime | None = None

    def __post_init__(self) -> None:
        if self.capacity < 0 or self.active_students < 0:
            raise ValueError("capacity and active_students cannot be negative")
        if self.earliest_slot is not None:
            require_aware(self.earliest_slot, "earliest_slot")
        object.__setattr__(self, "instruments", frozenset(i.strip().lower() for i in self.instruments))
        object.__setattr__(self, "availability", tuple(self.availability))

    @property
    def load(self) -> Fraction:
        """Share of capacity in use, as an exact fraction (1/3 and 2/6 tie)."""
        return Fraction(self.active_students, self.capacity) if self.capacity else Fraction(1)


def is_eligible(candidate: TeacherCandidate, instrument: str, preferred: Iterable[WeeklyWindow]) -> bool:
    """Teaches ``instrument``, is active, has room, and shares some weekly time with ``preferred``.

    A parent with no preferred windows matches no one: slots must fit both weeks.
    """
    return (
        instrument.strip().lower() in candidate.instruments
        and candidate.active
        and candidate.active_students < candidate.capacity
        and bool(overlapping_windows(candidate.availability, preferred))
    )


def _rank_key(candidate: TeacherCandidate) -> tuple[Fraction, int, datetime, str]:
    slot = candidate.earliest_slot if candidate.earliest_slot is not None else _NO_SLOT
    return (candidate.load, candidate.active_students, slot, candidate.teacher_id)


def rank_teachers(
    candidates: Iterable[TeacherCandidate], instrument: str, preferred: Iterable[WeeklyWindow]
) -> list[TeacherCandidate]:
    """The eligible candidates (see :func:`is_eligible`), best first, ordered by:

    1. lowest load, ``active_students / capacity`` compared exactly;
    2. then fewest ``active_students``;
    3. then earliest ``earliest_slot`` (candidates with None come after every dated one);
    4. then ``teacher_id`` ascending (plain string order), so the result never depends on input order.
    """
    preferred_windows = tuple(preferred)
    eligible = [c for c in candidates if is_eligible(c, instrument, preferred_windows)]
    return sorted(eligible, key=_rank_key)
