"""The pay period's report (a Temporal Schedule, ``workers/schedules.py``): read the period's lessons and rates,
compute each teacher's pay (``domain/teacher_pay.py``) and email the office once per period (the email's dedup
key), however often the schedule fires. Nothing is stored: the payroll route recomputes the same report."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities
    from activities.teacher_pay import TeacherPayActivities
    from core.contracts.email import SendEmail
    from core.contracts.teacher_pay import (
        TEACHER_PAY_TEMPLATE,
        TEACHER_PAY_WORKFLOW,
        PayPeriodQuery,
        PayReportRequest,
        PayReportResult,
    )
    from domain.attendance import hours
    from domain.money import format_money
    from domain.teacher_pay import PayLesson, PayRate, pay_report, period_label, report_table

RETRY = RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10)


@workflow.defn(name=TEACHER_PAY_WORKFLOW)
class TeacherPayWorkflow:
    @workflow.run
    async def run(self, request: PayReportRequest) -> PayReportResult:
        facts = await workflow.execute_activity_method(
            TeacherPayActivities.period_facts,
            PayPeriodQuery(as_of=workflow.now(), period_start=request.period_start, period_end=request.period_end),
            start_to_close_timeout=timedelta(minutes=2),
            retry_policy=RETRY,
        )
        report = pay_report(
            facts.period_start,
            facts.period_end,
            [PayLesson(**fact.model_dump()) for fact in facts.lessons],
            [PayRate(**fact.model_dump()) for fact in facts.rates],
            facts.pay_forfeited,
        )
        start, end = facts.period_start.isoformat(), facts.period_end.isoformat()
        sent = await workflow.execute_activity_method(
            EmailActivities.send_email,
            SendEmail(
                template=TEACHER_PAY_TEMPLATE,
                dedup_key=f"teacher-pay:{start}:{end}",
                to="office",
                context={
                    "period": period_label(facts.period_start, facts.period_end),
                    "period_start": start,
                    "period_end": end,
                    "report_table": report_table(report, facts.currency),
                    "total_hours": hours(report.paid_minutes),
                    "total_amount": format_money(report.amount_minor, facts.currency),
                    "forfeited_rule": "paid" if facts.pay_forfeited else "not paid",
                },
            ),
            start_to_close_timeout=timedelta(seconds=60),
            retry_policy=RETRY,
        )
        return PayReportResult(
            period_start=facts.period_start,
            period_end=facts.period_end,
            teachers=len(report.lines),
            paid_lessons=report.paid_lessons,
            paid_minutes=report.paid_minutes,
            amount_minor=report.amount_minor,
            already_sent=sent.already_sent,
        )
