"""RetentionWorkflow's contract (started daily by its Schedule): its request, the cut-offs it applies and its
report (counts only)."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

RETENTION_WORKFLOW = "RetentionWorkflow"


class RetentionRequest(BaseModel):
    """The schedule's empty request; ``as_of`` for a run by hand."""

    as_of: datetime | None = None


class RetentionCutoffs(BaseModel):
    as_of: datetime
    closed_family_before: datetime
    audit_before: datetime
    webhook_payload_before: datetime


class ClosedFamilies(BaseModel):
    parent_ids: list[uuid.UUID] = Field(default_factory=list)


class RetentionReport(BaseModel):
    families_erased: int = 0
    audit_rows_deleted: int = 0
    webhook_payloads_blanked: int = 0
    namespace_retention: str = ""
