"""The corpus catches what it is there for: a change that would break a running workflow fails its replay."""

from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from core.contracts.teacher_pay import TEACHER_PAY_WORKFLOW, PayReportRequest, PayReportResult
from core.settings import Settings
from core.temporal import data_converter
from tests.replay.recorder import CORPUS
from tests.replay.test_corpus import corpus_replayer, load_case
from workers.main import workflow_runner
from workflows.teacher_pay import TeacherPayWorkflow


@workflow.defn(name=TEACHER_PAY_WORKFLOW, sandboxed=False)
class TeacherPayWithAPauseFirst(TeacherPayWorkflow):
    """The deliberate incompatible change: a timer before the first activity, with no ``workflow.patched``."""

    @workflow.run
    async def run(self, request: PayReportRequest) -> PayReportResult:
        await workflow.sleep(timedelta(seconds=1))
        return await super().run(request)


async def test_a_history_recorded_before_an_incompatible_change_fails_then_passes_once_it_is_reverted() -> None:
    [case, *_] = sorted((CORPUS / TEACHER_PAY_WORKFLOW).glob("*.json"))
    history = load_case(case)
    changed = Replayer(
        workflows=[TeacherPayWithAPauseFirst],
        workflow_runner=workflow_runner(),
        data_converter=data_converter(Settings()),
    )
    with pytest.raises(NondeterminismError):
        await changed.replay_workflow(history)
    result = await corpus_replayer().replay_workflow(history)  # the real class: the change reverted
    assert result.replay_failure is None
