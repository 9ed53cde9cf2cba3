"""The enrollment's pure rules and the email renderer, without any server."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from temporalio.exceptions import ApplicationError

from activities.enrollment import mirror
from activities.templates import TemplateError, available_templates, render
from domain.calendar import Closure, WeeklyWindow
from domain.enrollment_flow import (
    accepts,
    application_fingerprint,
    demo_reminder_at,
    lesson_term,
    windows_from_json,
    windows_to_json,
)
from domain.local_time import format_local
from models import Enrollment

VANCOUVER = ZoneInfo("America/Vancouver")


def test_an_active_enrollment_can_still_be_cancelled_but_takes_no_outcome() -> None:
    assert accepts("active", "cancel") is None
    assert accepts("active", "demo_outcome") == "the enrollment is already active"
    assert accepts("cancelled", "cancel") == "the enrollment is already cancelled"
    assert accepts("demo_scheduled", "demo_outcome") is None
    assert "only in: waitlisted" in (accepts("demo_scheduled", "assign_teacher") or "")


def test_windows_survive_the_database_round_trip() -> None:
    windows = [WeeklyWindow(0, time(15, 30), time(17)), WeeklyWindow(6, time(9), time(12, 15))]
    stored = windows_to_json(windows)
    assert stored[0] == {"weekday": 0, "start": "15:30", "end": "17:00"}
    assert windows_from_json(stored) == windows


def test_lessons_go_into_the_running_semester_then_the_next() -> None:
    fall, spring = (date(2026, 9, 8), date(2027, 1, 31)), (date(2027, 2, 1), date(2027, 6, 20))
    winter = Closure(date(2026, 12, 21), date(2027, 1, 3))
    terms = lesson_term([spring, fall], [winter], date(2026, 11, 25))
    assert [(t.start, t.end) for t in terms] == [fall, spring]
    assert terms[0].closures == (winter,)
    assert terms[1].closures == ()
    assert [(t.start, t.end) for t in lesson_term([spring, fall], [], date(2027, 2, 1))] == [spring]


def test_the_parent_is_reminded_unless_the_reminder_time_had_passed_at_booking() -> None:
    booked = datetime(2026, 11, 25, 12, tzinfo=UTC)
    demo = booked + timedelta(days=3)
    assert demo_reminder_at(booked, demo, timedelta(hours=24)) == demo - timedelta(hours=24)
    assert demo_reminder_at(booked, booked + timedelta(hours=20), timedelta(hours=24)) is None
    with pytest.raises(ValueError, match="booked_at must be a timezone-aware datetime"):
        demo_reminder_at(booked.replace(tzinfo=None), demo, timedelta(hours=1))


def test_the_application_fingerprint_ignores_key_order_only() -> None:
    one = {"a": 1, "b": {"c": [1, 2]}}
    assert application_fingerprint(one) == application_fingerprint({"b": {"c": [1, 2]}, "a": 1})
    assert application_fingerprint(one) != application_fingerprint({"a": 1, "b": {"c": [2, 1]}})


def test_local_times_read_as_people_read_them_across_dst() -> None:
    assert format_local(datetime(2026, 11, 30, 0, 5, tzinfo=UTC), VANCOUVER) == "Sunday 29 November 2026, 4:05 PM PST"
    assert format_local(datetime(2026, 7, 1, 19, 0, tzinfo=UTC), VANCOUVER) == "Wednesday 1 July 2026, 12:00 PM PDT"


def test_every_enrollment_email_renders_escaped_html_and_plain_text() -> None:
    context = {
        "school_name": "Cedar Heights Music Academy",
        "school_url": "http://cedar.test",
        "parent_first_name": "<Robin>",
        "student_first_name": "Ada",
        "instrument": "piano",
        "lesson_minutes": 30,
        "teacher_display_name": "Maya L.",
        "demo_at_local": "Monday 30 November 2026, 4:00 PM PST",
        "status_url": "http://cedar.test/s",
        "login_instructions": "set your password",
        "lesson_count": 8,
        "first_lesson_at_local": "Monday 7 December 2026, 4:00 PM PST",
        "closed_as": "cancelled",
        "reason": "moving away",
        "confirmation_link": "http://cedar.test/confirm-enrollment?token=t",
        "confirm_days": 7,
        "teacher_demos_url": "http://cedar.test/teacher/demos",
    }
    names = {name for name in available_templates() if name.startswith("enrollment_")}
    assert len(names) == 10
    for name in names:
        email = render(name, context)
        assert email.subject
        assert "Cedar Heights Music Academy" in email.text
        assert "<Robin>" not in email.html
        assert ("&lt;Robin&gt;" in email.html) == ("<Robin>" in email.text)


def test_a_missing_value_or_template_is_an_error_not_a_blank() -> None:
    with pytest.raises(TemplateError, match="student_first_name"):
        render("enrollment_waitlisted", {"school_name": "x", "school_url": "y", "parent_first_name": "z"})
    with pytest.raises(TemplateError, match="no template file"):
        render("no_such_email", {})


def _row(state: str, *visited: str) -> Enrollment:
    steps = [{"state": s, "at": "2026-11-25T12:00:00+00:00"} for s in (*visited, state)]
    return Enrollment(
        request_hash="h",
        workflow_id="w",
        instrument="piano",
        lesson_minutes=30,
        billing_interval="month",
        stripe_payment_method_id="pm",
        state=state,
        steps=steps,
    )


def test_the_mirror_records_an_allowed_move_once() -> None:
    row = _row("teacher_assigned", "received", "validated", "account_created")
    mirror(row, "demo_scheduled")
    mirror(row, "demo_scheduled")  # a retried step: nothing more
    assert row.state == "demo_scheduled"
    assert [s["state"] for s in row.steps][-2:] == ["teacher_assigned", "demo_scheduled"]
    assert row.completed_at is None


def test_the_mirror_ignores_a_step_run_again_after_the_row_moved_on() -> None:
    row = _row("demo_scheduled", "received", "validated", "account_created", "teacher_assigned")
    mirror(row, "account_created")  # create_account replayed after later steps committed
    assert row.state == "demo_scheduled"
    assert len(row.steps) == 5


def test_the_mirror_refuses_an_illegal_move_for_good() -> None:
    row = _row("received")
    with pytest.raises(ApplicationError, match="cannot go from received to active") as refused:
        mirror(row, "active")
    assert refused.value.non_retryable
    assert refused.value.type == "TransitionRefused"
    assert row.state == "received"
    closed = _row("withdrawn", "received", "demo_scheduled")
    with pytest.raises(ApplicationError, match="already withdrawn"):
        mirror(closed, "active")


def test_the_mirror_closes_an_active_enrollment_on_cancellation() -> None:
    row = _row("active", "demo_scheduled")
    mirror(row, "cancelled", "moving away")
    assert row.state == "cancelled"
    assert row.failure_reason == "moving away"
    assert row.completed_at is not None


def test_login_instructions_are_a_fragment_of_the_templates() -> None:
    context = {"school_name": "Cedar", "school_url": "http://cedar.test", "set_password_days": 3}
    context["set_password_link"] = "http://cedar.test/set-password?token=<t>"
    new = render("enrollment_welcome_parent", _welcome(context), {"login_instructions": "login_set_password"})
    assert "set your password within 3 day(s) here: http://cedar.test/set-password?token=<t>" in new.text
    assert "token=&lt;t&gt;" in new.html
    known = render("enrollment_welcome_parent", _welcome(context), {"login_instructions": "login_sign_in"})
    assert "sign in with your existing account at http://cedar.test." in known.text


def _welcome(context: dict[str, object]) -> dict[str, object]:
    return {
        **context,
        "parent_first_name": "Robin",
        "student_first_name": "Ada",
        "instrument": "piano",
        "lesson_minutes": 30,
        "teacher_display_name": "Maya L.",
        "demo_at_local": "Monday 30 November 2026, 4:00 PM PST",
        "status_url": "http://cedar.test/s",
    }
