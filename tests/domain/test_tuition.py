from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from domain.calendar import local_to_utc
from domain.tuition import (
    LessonGap,
    Period,
    cycle_anchor,
    lesson_earnings,
    lesson_gap,
    lesson_periods,
    period_amount,
    period_amounts,
    period_bounds,
    period_instants,
    period_key,
    period_last_lesson_end,
    unheld_amount,
)

TZ = ZoneInfo("America/Vancouver")
PRICE = 14000


def weekly(first: date, weeks: int, skip: tuple[date, ...] = ()) -> list[datetime]:
    """Tuesday-style weekly lessons at 16:00 local from ``first``, ``skip`` left out (closures, a break)."""
    days = [first + timedelta(weeks=n) for n in range(weeks)]
    return [local_to_utc(d, time(16), TZ) for d in days if d not in skip]


def test_periods_are_local_months_and_weeks() -> None:
    # 23:30 on 31 August in Vancouver is already September in UTC: the school's month counts.
    late = datetime(2026, 9, 1, 6, 30, tzinfo=UTC)
    assert period_bounds(late, "month", TZ) == (date(2026, 8, 1), date(2026, 9, 1))
    assert period_key(late, "month", TZ) == "2026-08"
    assert period_bounds(datetime(2026, 12, 20, 20, tzinfo=UTC), "month", TZ) == (date(2026, 12, 1), date(2027, 1, 1))
    wednesday = datetime(2026, 9, 9, 20, tzinfo=UTC)
    assert period_bounds(wednesday, "week", TZ) == (date(2026, 9, 7), date(2026, 9, 14))
    assert period_key(wednesday, "week", TZ) == "2026-09-07"


def test_stripe_cycle_is_anchored_at_the_local_midnight_after_the_first_lessons_period() -> None:
    # A first lesson on Tuesday 15 September 2026 at 16:00 in Vancouver (UTC-7 then).
    first = local_to_utc(date(2026, 9, 15), time(16), TZ)
    assert cycle_anchor(first, "month", TZ) == datetime(2026, 10, 1, 7, tzinfo=UTC)
    assert cycle_anchor(first, "week", TZ) == datetime(2026, 9, 21, 7, tzinfo=UTC)
    # Across the autumn clock change the month's end is midnight in winter time (UTC-8).
    assert period_instants(datetime(2026, 11, 10, tzinfo=UTC), "month", TZ) == (
        datetime(2026, 11, 1, 7, tzinfo=UTC),
        datetime(2026, 12, 1, 8, tzinfo=UTC),
    )
    # The anchor's instant belongs to the next period: Stripe's next invoice bills that period.
    assert period_key(cycle_anchor(first, "month", TZ), "month", TZ) == "2026-10"


def with_ends(starts: list[datetime]) -> list[tuple[datetime, datetime]]:
    return [(s, s + timedelta(minutes=30)) for s in starts]


def test_a_gap_pauses_billing_from_the_last_lesson_before_it_to_the_next_lessons_period() -> None:
    fall = weekly(date(2026, 9, 15), 14)  # to 15 December
    spring = weekly(date(2027, 2, 2), 10)  # January without lessons
    lessons = with_ends(spring + fall)  # in any order
    gap = lesson_gap(lessons, fall[0], "month", TZ)
    assert gap == LessonGap(
        begins_at=fall[-1] + timedelta(minutes=30), resumes_at=local_to_utc(date(2027, 2, 1), time(0), TZ)
    )
    # Not over until the next lessons' period starts; after that, no gap is left.
    assert lesson_gap(lessons, gap.resumes_at - timedelta(seconds=1), "month", TZ) == gap
    assert lesson_gap(lessons, gap.resumes_at, "month", TZ) is None
    # A month without lessons inside a semester (a closed month) is a gap as well; weekly plans count weeks.
    closed = with_ends(weekly(date(2026, 9, 1), 20, skip=tuple(date(2026, 10, d) for d in (6, 13, 20, 27))))
    assert lesson_gap(closed, fall[0], "month", TZ) == LessonGap(
        begins_at=local_to_utc(date(2026, 9, 29), time(16, 30), TZ),
        resumes_at=local_to_utc(date(2026, 11, 1), time(0), TZ),
    )
    one_week_off = with_ends(weekly(date(2026, 9, 1), 4, skip=(date(2026, 9, 15),)))
    assert lesson_gap(one_week_off, fall[0] - timedelta(days=30), "week", TZ) == LessonGap(
        begins_at=local_to_utc(date(2026, 9, 8), time(16, 30), TZ),
        resumes_at=local_to_utc(date(2026, 9, 21), time(0), TZ),
    )
    # Lessons in consecutive periods leave no gap, however far apart inside them.
    assert lesson_gap(with_ends(weekly(date(2026, 9, 1), 10)), fall[0], "month", TZ) is None
    assert lesson_gap(with_ends([fall[0], fall[0] + timedelta(days=45)]), fall[0], "month", TZ) is None
    assert lesson_gap([], fall[0], "month", TZ) is None


def test_a_periods_last_lesson_is_when_billing_looks_for_a_gap_again() -> None:
    lessons = with_ends(weekly(date(2026, 9, 1), 10))  # Tuesdays from 1 September to 3 November
    end_of = dict(lessons)
    september = weekly(date(2026, 9, 1), 5)
    assert period_last_lesson_end(lessons, september[0], "month", TZ) == end_of[september[-1]]
    # Once September's last lesson has ended, October's; in November (the last period) there is nothing to look at.
    assert (
        period_last_lesson_end(lessons, end_of[september[-1]], "month", TZ) == end_of[weekly(date(2026, 10, 27), 1)[0]]
    )
    assert period_last_lesson_end(lessons, local_to_utc(date(2026, 11, 2), time(0), TZ), "month", TZ) is None
    assert period_last_lesson_end(lessons, september[0], "week", TZ) == end_of[september[0]]
    assert period_last_lesson_end([], september[0], "month", TZ) is None


def test_only_periods_holding_lessons_are_listed() -> None:
    # September (from the 15th) to November, then nothing in December, then January.
    starts = weekly(date(2026, 9, 15), 11) + weekly(date(2027, 1, 12), 2)
    periods = lesson_periods(starts, "month", TZ)
    assert [(p.key, p.lessons) for p in periods] == [
        ("2026-09", 3),
        ("2026-10", 4),
        ("2026-11", 4),
        ("2027-01", 2),
    ]
    assert Period(date(2026, 9, 7), date(2026, 9, 14), 1).key == "2026-09-07"


def test_prorated_first_and_last_periods_full_ones_between() -> None:
    starts = weekly(date(2026, 9, 15), 11)  # Sep 3, Oct 4, Nov 4 lessons
    periods = lesson_periods(starts, "month", TZ)
    assert period_amounts("prorated", PRICE, "month", periods) == [10500, 14000, 14000]
    # A five-lesson month between is the plan's price; a five-lesson first month never costs more than it.
    assert period_amount("prorated", PRICE, "month", 5) == PRICE
    assert period_amount("prorated", PRICE, "month", 5, first=True) == PRICE
    assert period_amount("prorated", PRICE, "month", 2, last=True) == 7000
    # Rounded down to the cent: 3/4 of 14 001 is 10 500.75.
    assert period_amount("prorated", 14001, "month", 3, first=True) == 10500


def test_weekly_plans_prorate_by_one_lesson_per_week() -> None:
    assert period_amount("prorated", 3500, "week", 1, first=True) == 3500
    assert period_amount("prorated", 3500, "week", 0, first=True) == 0


def test_monthly_flat_and_per_lesson() -> None:
    starts = weekly(date(2026, 9, 15), 11)
    periods = lesson_periods(starts, "month", TZ)
    assert period_amounts("monthly_flat", PRICE, "month", periods) == [14000, 14000, 14000]
    assert period_amounts("per_lesson", PRICE, "month", periods) == [10500, 14000, 14000]
    assert period_amount("per_lesson", PRICE, "month", 5) == 17500
    assert period_amount("per_lesson", 3500, "week", 1) == 3500


def test_a_period_without_lessons_costs_nothing_whatever_the_rule() -> None:
    for rule in ("prorated", "monthly_flat", "per_lesson"):
        assert period_amount(rule, PRICE, "month", 0) == 0


def test_stopping_gives_back_the_unheld_lessons_by_the_rule() -> None:
    # October was billed in full; the student stops after its first lesson.
    assert unheld_amount("prorated", PRICE, "month", 14000, held=1) == 10500
    assert unheld_amount("per_lesson", PRICE, "month", 14000, held=1) == 10500
    assert unheld_amount("monthly_flat", PRICE, "month", 14000, held=1) == 0
    assert unheld_amount("prorated", PRICE, "month", 14000, held=0) == 14000
    assert unheld_amount("prorated", PRICE, "month", 14000, held=4) == 0


def test_lessons_earn_exactly_what_their_period_bills() -> None:
    starts = weekly(date(2026, 9, 29), 6)  # Sep 1 lesson, Oct 4, Nov 1
    earned = lesson_earnings("prorated", 14002, "month", starts, TZ)
    periods = lesson_periods(starts, "month", TZ)
    assert sum(earned.values()) == sum(period_amounts("prorated", 14002, "month", periods))
    october = [earned[s] for s in starts[1:5]]
    assert october == [3500, 3501, 3500, 3501]
    assert earned[starts[0]] == 3500


@pytest.mark.parametrize(
    ("call", "refusal"),
    [
        (lambda: period_amount("yearly", PRICE, "month", 1), "rule must be"),
        (lambda: period_amount("prorated", -1, "month", 1), "price must be"),
        (lambda: period_amount("prorated", PRICE, "day", 1), "interval must be"),
        (lambda: period_bounds(datetime(2026, 9, 1), "month", TZ), "timezone"),
    ],
)
def test_refuses_nonsense(call: object, refusal: str) -> None:
    with pytest.raises(ValueError, match=refusal):
        call()  # type: ignore[operator]


def test_a_returning_students_semesters_are_each_prorated_at_their_edges() -> None:
    # Fall: 3 lessons in December, 4 in January, 2 in February; spring after a six-week break: 1 in March, 4 in April.
    fall = weekly(date(2026, 12, 8), 10, skip=(date(2026, 12, 29),))
    spring = weekly(date(2027, 3, 30), 5)
    fall_only = period_amounts("prorated", PRICE, "month", lesson_periods(fall, "month", TZ))
    whole = period_amounts("prorated", PRICE, "month", lesson_periods(fall + spring, "month", TZ))

    assert fall_only == [10500, PRICE, 7000]
    # Booking spring changes nothing already billed, and spring's single March lesson costs a quarter.
    assert whole == [10500, PRICE, 7000, 3500, PRICE]


def test_a_winter_break_inside_a_semester_is_no_new_stretch() -> None:
    # Two weeks closed at the turn of the year: three weeks between lessons, still one stretch.
    lessons = weekly(date(2026, 12, 1), 10, skip=(date(2026, 12, 22), date(2026, 12, 29)))
    periods = lesson_periods(lessons, "month", TZ)

    assert [(p.opens_stretch, p.closes_stretch) for p in periods] == [(True, False), (False, False), (False, True)]
    # December's three lessons open the stretch; January is a full month; February's one lesson closes it.
    assert period_amounts("prorated", PRICE, "month", periods) == [10500, PRICE, 3500]
