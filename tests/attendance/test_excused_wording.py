"""An excused absence is told as one, not as the family cancelling: the family earned a make-up credit."""

from __future__ import annotations

from activities.templates import render

CONTEXT = {
    "school_name": "Cedar",
    "school_url": "http://cedar.test/",
    "parent_first_name": "Ana",
    "teacher_display_name": "Maya L.",
    "lesson_at_local": "Monday 7 December 2026, 4:00 PM PST",
    "credit_expires_at_local": "Friday 5 February 2027, 4:00 PM PST",
    "family_url": "http://cedar.test/family",
    "teacher_lessons_url": "http://cedar.test/teacher",
}
FRAGMENTS = {
    "outcome": "lesson_outcome_credit",
    "outcome_title": "lesson_outcome_title_credit",
    "cancelled_by_words": "cancelled_by_family",
}


def test_the_family_reads_marked_excused_and_the_credit_earned() -> None:
    email = render("lesson_excused_parent", CONTEXT, FRAGMENTS)
    assert email.subject == "Lesson on Monday 7 December 2026, 4:00 PM PST marked excused: make-up credit earned"
    assert "is marked excused; you earned a make-up credit." in email.text
    assert "before Friday 5 February 2027, 4:00 PM PST" in email.text
    assert "marked excused; you earned a" in email.html
    for part in (email.subject, email.text, email.html):
        assert "by the family" not in part
        assert "cancelled" not in part


def test_the_teacher_reads_excused_absence() -> None:
    email = render("lesson_excused_teacher", CONTEXT, FRAGMENTS)
    assert email.subject == "Lesson on Monday 7 December 2026, 4:00 PM PST: excused absence"
    assert "is recorded as an excused absence" in email.text
    assert "excused absence" in email.html
    assert "by the family" not in email.text
