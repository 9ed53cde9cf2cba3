"""Dunning's words live in the templates: the workflow names the case (a fragment), the renderer says it."""

from __future__ import annotations

import pytest

from activities.templates import TemplateError, render

NOTICE = {
    "school_name": "Cedar Heights Music Academy",
    "school_url": "http://cedar.test",
    "parent_first_name": "Robin",
    "amount_due": "$1,234.50 CAD",
    "invoice_ref": "in_1",
    "attempt": "1",
    "card_url": "http://cedar.test/card",
    "suspend_on": "Monday 14 December 2026",
    "cancel_on": "Monday 21 December 2026",
    "next_step": "",
}


@pytest.mark.parametrize(
    ("step", "extra", "words"),
    [
        ("retry", {"retry_on": "Tuesday 2 December 2026"}, "We will try your card again on Tuesday 2 December 2026,"),
        ("new_card", {}, "Your bank will not accept further tries on this card: please add a new card."),
        ("confirm_online", {"confirm_url": "https://pay.test/i"}, "confirm this payment here: https://pay.test/i,"),
        ("confirm_with_bank", {}, "confirm this payment (your bank's app or website), or add another card."),
        ("update_card", {}, "Please update your card so we can collect it."),
    ],
)
def test_the_payment_failed_notice_says_what_happens_next(step: str, extra: dict[str, str], words: str) -> None:
    email = render("dunning_payment_failed", {**NOTICE, **extra}, {"next_step": f"dunning_next_step_{step}"})
    assert words in email.text
    assert "$1,234.50 CAD" in email.subject


def test_a_notice_sent_before_the_fragments_still_renders_its_own_words() -> None:
    # An activity scheduled by an older workflow carries the sentence itself in its context.
    email = render("dunning_payment_failed", {**NOTICE, "next_step": "Please update your card."})
    assert "Please update your card." in email.text


@pytest.mark.parametrize(
    ("key", "what"), [("suspended", "on hold"), ("cancelled", "cancelled"), ("restored", "back on your calendar")]
)
def test_teachers_are_told_what_happened_to_the_lessons(key: str, what: str) -> None:
    context = {"school_name": "Cedar", "school_url": "u", "teacher_display_name": "Maya L.", "lesson_count": 2}
    context["teacher_lessons_url"] = "http://cedar.test/teacher"
    context["lesson_times"] = "Monday 7 December 2026, 4:00 PM PST; Monday 14 December 2026, 4:00 PM PST"
    email = render("dunning_teacher_notice", context, {"what": f"dunning_lessons_{key}"})
    assert email.subject == f"Lessons {what}: 2 upcoming lesson(s)"


def test_a_missing_fragment_is_an_error() -> None:
    with pytest.raises(TemplateError, match=r"no template file _dunning_next_step_teleport\.txt"):
        render("dunning_payment_failed", NOTICE, {"next_step": "dunning_next_step_teleport"})
