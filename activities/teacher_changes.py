"""The teacher changes' notices need their lessons written in the school's local time (``workflows/
teacher_changes.py``); the changes themselves are made by the API in one transaction."""

from __future__ import annotations

import uuid
from collections import defaultdict

from temporalio import activity

from core.contracts.teacher_changes import ChangedLesson, FormattedLines, LessonLines
from core.settings import Settings
from domain.local_time import format_local


class TeacherChangeActivities:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def _line(self, lesson: ChangedLesson) -> str:
        tz = self._settings.timezone
        when = format_local(lesson.starts_at, tz)
        if lesson.new_starts_at is not None and lesson.new_starts_at != lesson.starts_at:
            return f"- {when}: moved to {format_local(lesson.new_starts_at, tz)}"
        return f"- {when}"

    @activity.defn(name="teacher_change_lines")
    async def lines(self, request: LessonLines) -> FormattedLines:
        by_parent: dict[uuid.UUID, list[str]] = defaultdict(list)
        for lesson in request.lessons:
            by_parent[lesson.parent_id].append(self._line(lesson))
        return FormattedLines(
            all="\n".join(self._line(lesson) for lesson in request.lessons),
            by_parent={parent: "\n".join(lines) for parent, lines in by_parent.items()},
        )
