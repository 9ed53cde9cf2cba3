"""Records the replay corpus from the suite's own runs: ``CEDAR_RECORD_HISTORIES=1 ./cedar test tests/...``.

With the variable set, every test that builds settings (``make_settings``) gets the ``record_histories`` fixture:
at teardown it lists the workflow runs on the test's task queue and saves the history of each run whose path is
new to ``tests/replay/histories/<workflow type>/<case>.json``. A path is the run's signature: the activities it
scheduled, the signals and updates it took, the children and patches it recorded, its timers and how it ended;
two runs with the same signature are one case. ``index.json`` beside the cases says what each one covers.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from google.protobuf.message import Message
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import PayloadCodec
from temporalio.worker import Replayer

from core.settings import Settings

RECORD_ENV = "CEDAR_RECORD_HISTORIES"
_PAYLOAD, _PAYLOADS = "temporal.api.common.v1.Payload", "temporal.api.common.v1.Payloads"
_SEARCH_ATTRIBUTES = "temporal.api.common.v1.SearchAttributes"
CORPUS = Path(__file__).resolve().parent / "histories"
INDEX = CORPUS / "index.json"
# A case larger than this is left out: the corpus stays small enough to replay on every run.
MAX_CASE_BYTES = 120_000

_ENDINGS = {
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED: "completed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED: "failed",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED: "cancelled",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED: "terminated",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT: "timed-out",
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW: "continued",
}


def recording() -> bool:
    return os.environ.get(RECORD_ENV, "") not in ("", "0")


def signature(history: WorkflowHistory) -> dict[str, Any]:
    """What distinguishes one path through a workflow from another, read from its events."""
    activities: set[str] = set()
    signals: set[str] = set()
    updates: set[str] = set()
    children: set[str] = set()
    markers: set[str] = set()
    patches: set[str] = set()
    timers = False
    ending = "running"
    started_from = "start"
    for event in history.events:
        kind = event.event_type
        if kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attributes = event.workflow_execution_started_event_attributes
            if attributes.continued_execution_run_id:
                started_from = "continued"
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activities.add(event.activity_task_scheduled_event_attributes.activity_type.name)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signals.add(event.workflow_execution_signaled_event_attributes.signal_name)
        elif kind == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            updates.add(event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name)
        elif kind == EventType.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED:
            children.add(event.start_child_workflow_execution_initiated_event_attributes.workflow_type.name)
        elif kind == EventType.EVENT_TYPE_TIMER_STARTED:
            timers = True
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            marker = event.marker_recorded_event_attributes
            if marker.marker_name == "core_local_activity" and "data" in marker.details:
                for payload in marker.details["data"].payloads:
                    activities.add("local:" + json.loads(payload.data).get("activity_type", ""))
            elif marker.marker_name == "core_patch" and "patch-data" in marker.details:
                for payload in marker.details["patch-data"].payloads:
                    patches.add(json.loads(payload.data).get("id", ""))
            else:
                markers.add(marker.marker_name)
        elif kind in _ENDINGS:
            ending = _ENDINGS[kind]
    return {
        "started": started_from,
        "ending": ending,
        "activities": sorted(activities),
        "signals": sorted(signals),
        "updates": sorted(updates),
        "children": sorted(children),
        "markers": sorted(markers),
        "patches": sorted(patches),
        "timers": timers,
    }


def case_name(path: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(path, sort_keys=True).encode()).hexdigest()[:10]
    return f"{path['ending']}-{digest}"


def load_index() -> dict[str, dict[str, Any]]:
    return json.loads(INDEX.read_text()) if INDEX.exists() else {}


def save(history: WorkflowHistory, workflow_type: str, source: str, keep: bool = False) -> str | None:
    """Writes the history as a new case of its workflow type; None when its path is already in the corpus.

    ``keep``: a history from before a patch (its old path), which pruning never deletes: it goes with the patch's
    old branch, on purpose (docs/operations.md).
    """
    path = signature(history)
    relative = f"{workflow_type}/{case_name(path)}.json"
    index = load_index()
    target = CORPUS / relative
    if relative in index or target.exists():
        return None
    text = json.dumps(json.loads(history.to_json()), separators=(",", ":"))
    if len(text.encode()) > MAX_CASE_BYTES:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    index[relative] = {"recorded_by": source, **path, **({"keep": True} if keep else {})}
    INDEX.write_text(json.dumps(dict(sorted(index.items())), indent=1) + "\n")
    return relative


async def record_runs(client: Client, settings: Settings, replayer: Replayer, source: str) -> list[str]:
    """Saves every new path among the workflow runs on ``settings.task_queue`` that ``replayer`` (the real
    workflows) replays."""
    saved = []
    async for run in client.list_workflows(f'TaskQueue = "{settings.task_queue}"'):
        history = await client.get_workflow_handle(run.id, run_id=run.run_id).fetch_history()
        # A test's stand-in registered under a real workflow's name records a history the real class never made.
        if (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is not None:
            continue
        # Saved opened: the keys that sealed it live in this test's database, which is dropped after the test.
        codec = client.data_converter.payload_codec
        if codec is not None:
            for event in history.events:
                await open_payloads(event, codec)
        case = save(history, run.workflow_type, source)
        if case:
            saved.append(case)
    return saved


async def open_payloads(message: Message, codec: PayloadCodec) -> None:
    """Decodes, in place, every payload in ``message`` (search attributes are never encoded)."""
    for field, value in message.ListFields():
        kind = field.message_type
        if kind is None or kind.full_name == _SEARCH_ATTRIBUTES:
            continue
        if kind.GetOptions().map_entry:
            values = list(value.values())
            kind = kind.fields_by_name["value"].message_type
            if kind is None:
                continue
        else:
            values = list(value) if field.is_repeated else [value]
        for item in values:
            if kind.full_name == _PAYLOAD:
                [opened] = await codec.decode([item])
                item.CopyFrom(opened)
            elif kind.full_name == _PAYLOADS:
                opened_all = await codec.decode(list(item.payloads))
                del item.payloads[:]
                item.payloads.extend(opened_all)
            else:
                await open_payloads(item, codec)


def features(path: dict[str, Any]) -> set[str]:
    """The parts of a path a case covers: each activity, signal, update, child, patch and marker, whether it
    started from a continue-as-new, continued-as-new or failed, and whether it set timers. (A run still open, or
    terminated, when its test ended is no different path from one that completed.)"""
    parts = {f"started:{path['started']}", f"timers:{path['timers']}"}
    if path["ending"] in ("continued", "failed"):
        parts.add(f"ending:{path['ending']}")
    for kind in ("activities", "signals", "updates", "children", "patches", "markers"):
        parts |= {f"{kind}:{name}" for name in path[kind]}
    return parts


def prune() -> list[str]:
    """Keeps, per workflow type, the fewest bytes of cases that still cover every part any of its cases covers
    (greedy: the most new parts per byte first); deletes the rest. Returns the deleted cases."""
    index = load_index()
    for case in index:  # the signature may have learnt something since the case was recorded
        history = WorkflowHistory.from_json(case, (CORPUS / case).read_text())
        kept_on_purpose = {"keep": True} if index[case].get("keep") else {}
        index[case] = {"recorded_by": index[case]["recorded_by"], **signature(history), **kept_on_purpose}
    by_type: dict[str, list[str]] = {}
    for case in index:
        by_type.setdefault(case.split("/")[0], []).append(case)
    deleted = []
    for cases in by_type.values():
        size = {case: (CORPUS / case).stat().st_size for case in cases}
        # An adopted old path covers nothing of the current code's paths: those are chosen among the others.
        kept = {case for case in cases if index[case].get("keep")}
        uncovered = set().union(*(features(index[case]) for case in cases if case not in kept))
        while uncovered:
            best = max(
                (c for c in cases if c not in kept),
                key=lambda c: (len(features(index[c]) & uncovered) / size[c], -size[c]),
            )
            kept.add(best)
            uncovered -= features(index[best])
        for case in kept:  # cases recorded before compact writing shrink too
            target = CORPUS / case
            target.write_text(json.dumps(json.loads(target.read_text()), separators=(",", ":")))
        for case in sorted(set(cases) - kept):
            (CORPUS / case).unlink()
            del index[case]
            deleted.append(case)
    INDEX.write_text(json.dumps(dict(sorted(index.items())), indent=1) + "\n")
    return deleted


USAGE = """usage: python -m tests.replay.recorder prune
       python -m tests.replay.recorder adopt <workflow type> <history.json>   (an old path, kept)"""

if __name__ == "__main__":
    import sys

    match sys.argv[1:]:
        case ["prune"]:  # after recording: keep the corpus small
            for case in prune():
                print(f"deleted {case}")
        case ["adopt", workflow_type, file]:  # a history exported from production or recorded before a patch
            recorded = WorkflowHistory.from_json(workflow_type, Path(file).read_text())
            print(save(recorded, workflow_type, file, keep=True) or "already in the corpus")
        case _:
            raise SystemExit(USAGE)
