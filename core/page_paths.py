"""The paths of the staff's pages that emails link to, shared by the pages (``api/pages/``) and the email
activity (``activities/email.py``), which prefixes them with ``settings.public_base_url``."""

from __future__ import annotations

# A teacher's lessons: today's and this week's, in the school's timezone.
TEACHER_LESSONS = "/teacher"
# A teacher's demo lessons: those ahead, and those waiting for the outcome (continue, withdraw, no-show).
TEACHER_DEMOS = "/teacher/demos"
