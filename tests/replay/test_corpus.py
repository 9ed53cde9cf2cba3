"""The deploy-safety net: every recorded history in ``tests/replay/histories`` replays on the current code.

A history stands for a workflow that may be running in production when this code is deployed; a change that
replays it differently (a command added, removed or reordered without ``workflow.patched``) fails here, before
it fails a family's workflow. Record new paths with ``CEDAR_RECORD_HISTORIES=1 ./cedar test tests/...``
(tests/replay/recorder.py); docs/operations.md says when a case may be deleted.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from core.settings import Settings
from core.temporal import data_converter
from tests.replay.recorder import CORPUS, load_index, signature
from workers.main import workflow_runner
from workers.registry import WORKFLOWS

CASES = sorted(CORPUS.glob("*/*.json"))


def corpus_replayer() -> Replayer:
    """Every registered workflow, in the worker's sandbox, with the project's data converter."""
    return Replayer(workflows=WORKFLOWS, workflow_runner=workflow_runner(), data_converter=data_converter(Settings()))


def load_case(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(f"{path.parent.name}-{path.stem}", path.read_text())


@pytest.mark.parametrize("case", CASES, ids=[f"{p.parent.name}/{p.stem}" for p in CASES])
async def test_a_recorded_history_replays_on_the_current_code(case: Path) -> None:
    # Raises on non-determinism (and on any other failure of a replayed workflow task).
    await corpus_replayer().replay_workflow(load_case(case))


def test_the_corpus_covers_every_registered_workflow_type() -> None:
    registered = {getattr(cls, "__temporal_workflow_definition").name for cls in WORKFLOWS}
    recorded = {path.parent.name for path in CASES}
    assert registered - recorded == set(), "record these with CEDAR_RECORD_HISTORIES=1 (tests/replay/recorder.py)"
    assert recorded <= registered  # a case of an unregistered type would replay nothing


def test_the_index_describes_every_case_and_nothing_else() -> None:
    index = load_index()
    assert set(index) == {f"{p.parent.name}/{p.name}" for p in CASES}
    for path in CASES:
        described = index[f"{path.parent.name}/{path.name}"]
        described = {key: value for key, value in described.items() if key not in ("recorded_by", "keep")}
        assert signature(load_case(path)) == described, path
    # The patches in the code today are on recorded paths (docs/operations.md lists them).
    patches = set().union(*(set(case["patches"]) for case in index.values()))
    assert {
        "mirror-stripe-refunds",
        "registration-fee",
        "lesson-periods",
        "family-confirmation",
        "semester-end",
        "lesson-reminders-in-pages",
        "reconciliation-in-pages",
        "billing-command-safety",
        "billing-search-attributes",
        "bounded-billing-email",
        "billing-start-outcome",
    } <= patches
