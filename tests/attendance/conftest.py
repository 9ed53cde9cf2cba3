"""Attendance's tests use the school API's factories (teachers, families, lessons)."""

from tests.school_api.conftest import add_lesson, make_family, make_teacher

__all__ = ["add_lesson", "make_family", "make_teacher"]
