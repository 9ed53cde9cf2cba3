"""The notices of a teacher change: a substitution (or its undoing) and a student's transfer to another teacher.

The API has made the change (one transaction) before either starts; these tell the family and each teacher once,
one email each listing the lessons concerned.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Literal

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.email import EmailActivities
    from activities.teacher_changes import TeacherChangeActivities
    from core.contracts.email import SendEmail
    from core.contracts.teacher_changes import (
        SUBSTITUTION_WORKFLOW,
        TEACHER_TRANSFER_WORKFLOW,
        ChangedLesson,
        FormattedLines,
        LessonLines,
        SubstitutionNotice,
        TransferNotice,
    )

TIMEOUT = timedelta(seconds=30)
FORMAT_RETRY = RetryPolicy(maximum_interval=timedelta(seconds=30))
EMAIL_RETRY = RetryPolicy(maximum_interval=timedelta(minutes=5))


async def _lines(lessons: list[ChangedLesson]) -> FormattedLines:
    return await workflow.execute_activity_method(
        TeacherChangeActivities.lines,
        LessonLines(lessons=lessons),
        start_to_close_timeout=TIMEOUT,
        retry_policy=FORMAT_RETRY,
    )


async def _send(
    key: str,
    to: Literal["parent", "teacher"],
    about: str,
    lines: str,
    teacher_id: uuid.UUID,
    parent_id: uuid.UUID | None = None,
) -> None:
    """One email: ``about`` names the wording fragment (``_teacher_change_<about>.txt``); a family's names the
    teacher it is about, a teacher's names the teacher it goes to."""
    recipient = parent_id if to == "parent" else teacher_id
    await workflow.execute_activity_method(
        EmailActivities.send_email,
        SendEmail(
            template=f"teacher_change_{to}",
            dedup_key=f"{key}-{to}-{recipient}",
            to=to,
            parent_id=parent_id,
            teacher_id=teacher_id,
            context={"lessons": lines},
            fragments={"change": f"teacher_change_{about}"},
        ),
        start_to_close_timeout=TIMEOUT,
        retry_policy=EMAIL_RETRY,
    )


@workflow.defn(name=SUBSTITUTION_WORKFLOW)
class SubstitutionWorkflow:
    @workflow.run
    async def run(self, request: SubstitutionNotice) -> int:
        if not request.lessons:
            return 0
        key = workflow.info().workflow_id
        lines = await _lines(request.lessons)
        suffix = "_undone" if request.undone else ""
        sends = [
            _send(key, "parent", f"substitution{suffix}_parent", text, request.substitute_teacher_id, parent)
            for parent, text in lines.by_parent.items()
        ]
        sends.append(
            _send(key, "teacher", f"substitution{suffix}_substitute", lines.all, request.substitute_teacher_id)
        )
        sends.append(_send(key, "teacher", f"substitution{suffix}_regular", lines.all, request.regular_teacher_id))
        await asyncio.gather(*sends)
        return len(sends)


@workflow.defn(name=TEACHER_TRANSFER_WORKFLOW)
class TeacherTransferWorkflow:
    @workflow.run
    async def run(self, request: TransferNotice) -> int:
        key = workflow.info().workflow_id
        lines = await _lines(request.lessons)
        text = lines.all or "- (no lessons booked yet from that date)"
        await asyncio.gather(
            _send(key, "parent", "transfer_parent", text, request.new_teacher_id, request.parent_id),
            _send(key, "teacher", "transfer_new_teacher", text, request.new_teacher_id),
            _send(key, "teacher", "transfer_old_teacher", text, request.old_teacher_id),
        )
        return 3
