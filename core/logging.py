"""One logging setup for every process (API, worker, tools): JSON lines or text (``Settings.log_format``), each
with the ids that tie it to a request, a workflow run or an activity."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from temporalio import activity, workflow

from core.settings import Settings
from core.tracing import current_request_id

# The ids a line may carry, in the order text lines show them.
ID_FIELDS = (
    "request_id",
    "workflow_id",
    "run_id",
    "workflow_type",
    "activity_id",
    "activity_type",
    "attempt",
)
# Fields a logging call may pass in ``extra`` that JSON lines keep (the API's access line sets them).
EXTRA_FIELDS = ("http_method", "http_route", "http_status", "duration_ms")


def log_ids(record: logging.LogRecord) -> dict[str, Any]:
    """The record's ids: from Temporal's ``workflow.logger`` and ``activity.logger`` extras (flattened), from the
    activity running the logging code, and the request id the API's request (or the workflow's start) carried."""
    ids: dict[str, Any] = {}
    details = getattr(record, "temporal_activity", None)
    if not isinstance(details, Mapping) and activity.in_activity():
        info = activity.info()
        details = {
            "workflow_id": info.workflow_id,
            "workflow_run_id": info.workflow_run_id,
            "workflow_type": info.workflow_type,
            "activity_id": info.activity_id,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
        }
    if isinstance(details, Mapping):
        ids.update(
            workflow_id=details.get("workflow_id"),
            run_id=details.get("workflow_run_id"),
            workflow_type=details.get("workflow_type"),
            activity_id=details.get("activity_id"),
            activity_type=details.get("activity_type"),
            attempt=details.get("attempt"),
        )
    flow = getattr(record, "temporal_workflow", None)
    if isinstance(flow, Mapping):
        ids.update(
            workflow_id=flow.get("workflow_id"),
            run_id=flow.get("run_id"),
            workflow_type=flow.get("workflow_type"),
            attempt=flow.get("attempt"),
        )
        for key in ("signal_name", "update_name", "update_id", "query_name"):
            if flow.get(key) is not None:
                ids[key] = flow[key]
    request = getattr(record, "request_id", None) or current_request_id()
    if request:
        ids["request_id"] = request
    return {key: value for key, value in ids.items() if value is not None}


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the ids of :func:`log_ids`, and any exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **log_ids(record),
        }
        line.update({key: getattr(record, key) for key in EXTRA_FIELDS if hasattr(record, key)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, then its ids as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = log_ids(record)
        shown = " ".join(f"{key}={ids[key]}" for key in ID_FIELDS if key in ids)
        return f"{line} [{shown}]" if shown else line


def formatter_for(settings: Settings) -> logging.Formatter:
    return JsonFormatter() if settings.effective_log_format == "json" else TextFormatter()


# Loggers that uvicorn gives handlers of its own (before Cedar's factory runs): their lines take Cedar's format too.
_UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(formatter_for(settings))
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])
    if settings.effective_log_format == "json":
        # The ids are fields of their own; Temporal's loggers would also append them to the message.
        workflow.logger.workflow_info_on_message = False
        activity.logger.activity_info_on_message = False
        for name in _UVICORN_LOGGERS:
            for own in logging.getLogger(name).handlers:
                own.setFormatter(handler.formatter)
    # Temporal's worker logs every poll at DEBUG; keep it quiet unless asked.
    logging.getLogger("temporalio").setLevel(max(logging.INFO, logging.getLogger().level))
