"""Request and response bodies for calendar feeds."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from api.schemas.common import RequestModel, ResponseModel


class CalendarFeedIssue(RequestModel):
    rotate: bool = Field(
        default=False, description="true: revoke the current URL and issue a new one (false: keep the current one)"
    )


class CalendarFeedOut(ResponseModel):
    url: str = Field(description="the secret iCalendar URL: anyone holding it reads the feed until it is revoked")
    created_at: datetime
