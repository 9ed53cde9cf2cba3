"""The pay period workflow's one read: the period's payable lessons and the teachers' rates
(``core/teacher_pay.py``, the same query as the payroll route), with the school's rule for forfeited lessons."""

from __future__ import annotations

from temporalio import activity

from core.contracts.teacher_pay import (
    TEACHER_PAY_PERIOD_ACTIVITY,
    PayLessonFact,
    PayPeriodFacts,
    PayPeriodQuery,
    PayRateFact,
)
from core.db import SessionFactory
from core.settings import Settings
from core.teacher_pay import pay_facts
from domain.teacher_pay import PayPeriod, last_complete_period


class TeacherPayActivities:
    def __init__(self, settings: Settings, sessions: SessionFactory) -> None:
        self._settings = settings
        self._sessions = sessions

    @activity.defn(name=TEACHER_PAY_PERIOD_ACTIVITY)
    async def period_facts(self, query: PayPeriodQuery) -> PayPeriodFacts:
        settings = self._settings
        if query.period_start is not None and query.period_end is not None:
            start, end = query.period_start, query.period_end
        else:
            today = query.as_of.astimezone(settings.timezone).date()
            start, end = last_complete_period(today, PayPeriod(settings.teacher_pay_period))
        async with self._sessions() as session:
            lessons, rates = await pay_facts(session, settings, start, end)
        return PayPeriodFacts(
            period_start=start,
            period_end=end,
            lessons=[PayLessonFact(**vars(lesson)) for lesson in lessons],
            rates=[PayRateFact(**vars(rate)) for rate in rates],
            pay_forfeited=settings.teacher_pay_forfeited_lessons,
            currency=settings.currency,
        )
