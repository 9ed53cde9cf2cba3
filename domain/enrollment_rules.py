"""Enrollment rules: the student's age and the states an enrollment moves through."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from enum import StrEnum

__all__ = [
    "ALLOWED_TRANSITIONS",
    "CLOSED_STATES",
    "TERMINAL_STATES",
    "EnrollmentAction",
    "EnrollmentState",
    "TransitionRefused",
    "age_on",
    "can_accept",
    "can_transition",
    "check_age",
    "move_needed",
]


def age_on(date_of_birth: date, on: date) -> int:
    """Completed years of age on ``on``.

    Someone born on 29 February turns a year older on 1 March in common years.
    """
    if on < date_of_birth:
        raise ValueError(f"{on} is before the date of birth {date_of_birth}")
    before_birthday = (on.month, on.day) < (date_of_birth.month, date_of_birth.day)
    return on.year - date_of_birth.year - before_birthday


def check_age(date_of_birth: date, on: date, min_age: int, max_age: int) -> str | None:
    """None when the age on ``on`` is within ``min_age``..``max_age`` (both inclusive), else why not."""
    if min_age > max_age:
        raise ValueError(f"min_age {min_age} is above max_age {max_age}")
    if date_of_birth > on:
        return f"date of birth {date_of_birth.isoformat()} is in the future"
    age = age_on(date_of_birth, on)
    if age < min_age:
        return f"students must be at least {min_age} years old; this student is {age}"
    if age > max_age:
        return f"students must be at most {max_age} years old; this student is {age}"
    return None


class EnrollmentState(StrEnum):
    RECEIVED = "received"
    VALIDATED = "validated"
    # The address belongs to an existing family: nothing of it changes until its owner follows the emailed link.
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    ACCOUNT_CREATED = "account_created"
    TEACHER_ASSIGNED = "teacher_assigned"
    WAITLISTED = "waitlisted"
    DEMO_SCHEDULED = "demo_scheduled"
    AWAITING_OUTCOME = "awaiting_outcome"
    ACTIVE = "active"
    WITHDRAWN = "withdrawn"
    CANCELLED = "cancelled"
    FAILED = "failed"
    # The student's lessons ran to their end (the family did not return for the next semester): closed cleanly.
    COMPLETED = "completed"


class EnrollmentAction(StrEnum):
    DEMO_OUTCOME = "demo_outcome"
    CANCEL = "cancel"
    ASSIGN_TEACHER = "assign_teacher"
    CONFIRM_FAMILY = "confirm_family"


# An enrollment ends when the student is active (billing takes over from there), the family withdrew
# after the demo, it was cancelled, or it failed for good.
TERMINAL_STATES: frozenset[EnrollmentState] = frozenset(
    {
        EnrollmentState.ACTIVE,
        EnrollmentState.WITHDRAWN,
        EnrollmentState.CANCELLED,
        EnrollmentState.FAILED,
        EnrollmentState.COMPLETED,
    }
)

_S = EnrollmentState
# The forward moves; any state that is not closed may also go to cancelled or failed (added below).
_FORWARD: dict[EnrollmentState, frozenset[EnrollmentState]] = {
    _S.RECEIVED: frozenset({_S.VALIDATED}),
    _S.VALIDATED: frozenset({_S.ACCOUNT_CREATED, _S.AWAITING_CONFIRMATION}),
    _S.AWAITING_CONFIRMATION: frozenset({_S.ACCOUNT_CREATED}),
    _S.ACCOUNT_CREATED: frozenset({_S.TEACHER_ASSIGNED, _S.WAITLISTED}),
    _S.WAITLISTED: frozenset({_S.TEACHER_ASSIGNED}),
    # No slot with the assigned teacher sends the student back to the waitlist.
    _S.TEACHER_ASSIGNED: frozenset({_S.DEMO_SCHEDULED, _S.WAITLISTED}),
    # The teacher may report the outcome before the demo's end is noticed; a no-show whose teacher has no slot
    # left for another demo goes back to the waitlist.
    _S.DEMO_SCHEDULED: frozenset({_S.AWAITING_OUTCOME, _S.ACTIVE, _S.WITHDRAWN, _S.WAITLISTED}),
    # A no-show can be rescheduled (or waitlisted, as above).
    _S.AWAITING_OUTCOME: frozenset({_S.ACTIVE, _S.WITHDRAWN, _S.DEMO_SCHEDULED, _S.WAITLISTED}),
    # The last booked lesson is over and the family is not returning.
    _S.ACTIVE: frozenset({_S.COMPLETED}),
}
# Closed for good: withdrawn, cancelled, failed, completed. An active enrollment ends the enrollment flow
# (TERMINAL_STATES) but the family can still cancel it until its last lesson, and it fails if a step after the
# hand-over to billing fails for good.
CLOSED_STATES: frozenset[EnrollmentState] = TERMINAL_STATES - {_S.ACTIVE}
ALLOWED_TRANSITIONS: dict[EnrollmentState, frozenset[EnrollmentState]] = {
    state: (frozenset() if state in CLOSED_STATES else _FORWARD.get(state, frozenset()) | {_S.CANCELLED, _S.FAILED})
    for state in EnrollmentState
}

_ACCEPTED_IN: dict[EnrollmentAction, frozenset[EnrollmentState]] = {
    EnrollmentAction.DEMO_OUTCOME: frozenset({_S.DEMO_SCHEDULED, _S.AWAITING_OUTCOME}),
    EnrollmentAction.CANCEL: frozenset(EnrollmentState) - TERMINAL_STATES,
    EnrollmentAction.ASSIGN_TEACHER: frozenset({_S.WAITLISTED}),
    EnrollmentAction.CONFIRM_FAMILY: frozenset({_S.AWAITING_CONFIRMATION}),
}


def can_accept(state: EnrollmentState | str, action: EnrollmentAction | str) -> str | None:
    """None when an enrollment in ``state`` accepts ``action`` (a signal or update), else the reason.

    ``demo_outcome`` only once a demo is scheduled or awaiting its outcome; ``cancel`` in any non-terminal
    state; ``assign_teacher`` (manual, by the office) only while waitlisted; ``confirm_family`` (the existing
    family's owner, through the emailed link) only while awaiting that confirmation.
    """
    try:
        current = EnrollmentState(state)
    except ValueError:
        return f"unknown enrollment state {state!r}"
    try:
        requested = EnrollmentAction(action)
    except ValueError:
        return f"unknown action {action!r}"
    if current in _ACCEPTED_IN[requested]:
        return None
    if current in TERMINAL_STATES:
        return f"the enrollment is already {current.value}"
    allowed = ", ".join(sorted(s.value for s in _ACCEPTED_IN[requested]))
    return f"{requested.value} is not accepted while the enrollment is {current.value} (only in: {allowed})"


def can_transition(current: EnrollmentState, target: EnrollmentState) -> str | None:
    """None when moving from ``current`` to ``target`` is allowed, else the reason."""
    if target in ALLOWED_TRANSITIONS[current]:
        return None
    if current in CLOSED_STATES:
        return f"the enrollment is already {current.value}"
    return f"an enrollment cannot go from {current.value} to {target.value}"


class TransitionRefused(ValueError):
    """A move the enrollment's states do not allow (:data:`ALLOWED_TRANSITIONS`)."""


def move_needed(
    current: EnrollmentState | str, target: EnrollmentState | str, visited: Iterable[EnrollmentState | str] = ()
) -> bool:
    """Whether recording ``target`` on an enrollment in ``current`` changes it; raises :class:`TransitionRefused`
    when the move is not allowed.

    False for the same state again (a retried step), and for a state the enrollment has already been through
    (``visited``, its recorded steps) that it cannot go back to: a step run again after the enrollment moved on (a
    replayed local activity) finds its own earlier result instead of moving the enrollment back.
    """
    current, target = EnrollmentState(current), EnrollmentState(target)
    if target == current:
        return False
    reason = can_transition(current, target)
    if reason is None:
        return True
    if target.value in {str(state) for state in visited}:
        return False
    raise TransitionRefused(reason)
