"""The contract of the one email activity every workflow calls: ``EmailActivities.send_email(SendEmail)``.

Workflows pass ids, template names and facts, never addresses, names or wording: the activity reads the people
from the database and the words from ``activities/templates/``.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, Field


class SendEmail(BaseModel):
    template: str
    dedup_key: str = Field(max_length=255)
    # Whose address to use when ``recipient`` is empty: the parent's or the teacher's (looked up by id here), or
    # the address typed into the enrollment's form (``applicant``), or the school's office (``office_email``).
    to: Literal["parent", "teacher", "applicant", "office"] | None = None
    recipient: str | None = None
    context: dict[str, Any] = Field(default_factory=dict)
    parent_id: uuid.UUID | None = None
    teacher_id: uuid.UUID | None = None
    # With an enrollment, the student's first name, instrument, teacher and demo time join the context.
    enrollment_id: uuid.UUID | None = None
    # Adds ``login_instructions``: a set-password link for a parent without a password yet, else a sign-in hint.
    include_login: bool = False
    # Adds ``confirmation_link``: a new one-time link with which an existing family accepts or declines the
    # enrollment (its secret is stored hashed on the enrollment, and reaches only this email).
    include_confirmation: bool = False
    # Context keys holding ISO instants, shown in the school's local time ("Monday 30 November 2026, 4:00 PM PST").
    local_times: list[str] = Field(default_factory=list)
    # Context keys whose value is a wording fragment of the templates folder (``_<fragment>.txt``), filled with the
    # context: how a workflow picks one of several sentences without holding their words.
    fragments: dict[str, str] = Field(default_factory=dict)


class EmailResult(BaseModel):
    communication_id: uuid.UUID
    already_sent: bool
    # Not sent: the address had its day's cap of public-action emails.
    suppressed: bool = False
