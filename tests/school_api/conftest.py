"""Factories for the school API's tests: families and teachers with login accounts, lessons on their calendars."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest

from core.db import SessionFactory, transaction
from models import (
    BillingAccount,
    Communication,
    Invoice,
    Lesson,
    LessonKind,
    Parent,
    Payment,
    Role,
    Student,
    Teacher,
    TeacherAvailability,
    User,
)

API = "/api/v1"


@dataclass
class Family:
    parent: Parent
    students: list[Student]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class TeacherAccount:
    teacher: Teacher
    headers: dict[str, str] = field(default_factory=dict)


def _tag() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def make_family(sessions: SessionFactory, auth_headers: Callable[..., Any]) -> Callable[..., Any]:
    """``await make_family(children=2)`` → a parent with a login, their children, and the parent's headers."""

    async def make(children: int = 1) -> Family:
        tag = _tag()
        async with transaction(sessions) as session:
            user = User(email=f"parent-{tag}@cedar.test", role=Role.parent)
            parent = Parent(
                user_id=user.id, first_name="Pat", last_name=f"Family{tag}", email=user.email, phone="604-555-0100"
            )
            session.add(user)
            await session.flush()
            session.add(parent)
            await session.flush()
            students = [
                Student(
                    parent_id=parent.id,
                    first_name=f"Kid{index}",
                    last_name=f"Family{tag}",
                    date_of_birth=date(2016, 5, 1 + index),
                    instrument="piano",
                )
                for index in range(children)
            ]
            session.add_all(students)
        return Family(parent, students, await auth_headers(Role.parent, user_id=user.id))

    return make


@pytest.fixture
def make_teacher(sessions: SessionFactory, auth_headers: Callable[..., Any]) -> Callable[..., Any]:
    """``await make_teacher()`` → a piano teacher available every day 09:00-21:00, with their headers."""

    async def make() -> TeacherAccount:
        tag = _tag()
        async with transaction(sessions) as session:
            user = User(email=f"teacher-{tag}@cedar.test", role=Role.teacher)
            teacher = Teacher(
                user_id=user.id,
                first_name="Tess",
                last_name=f"Teacher{tag}",
                display_name=f"Tess {tag}",
                email=user.email,
                instruments=["piano"],
            )
            session.add(user)
            await session.flush()
            session.add(teacher)
            await session.flush()
            session.add_all(
                TeacherAvailability(teacher_id=teacher.id, weekday=day, start_time=time(9), end_time=time(21))
                for day in range(7)
            )
        return TeacherAccount(teacher, await auth_headers(Role.teacher, user_id=user.id))

    return make


@pytest.fixture
def add_lesson(sessions: SessionFactory) -> Callable[..., Any]:
    """``await add_lesson(teacher, student, starts_at)`` → a scheduled 30-minute regular lesson."""

    async def add(teacher: Teacher, student: Student, starts_at: datetime, minutes: int = 30) -> Lesson:
        async with transaction(sessions) as session:
            lesson = Lesson(
                kind=LessonKind.regular,
                teacher_id=teacher.id,
                student_id=student.id,
                starts_at=starts_at,
                ends_at=starts_at + timedelta(minutes=minutes),
            )
            session.add(lesson)
        return lesson

    return add


def future_local(settings: Any, days: int, hour: int, minute: int = 0) -> datetime:
    """An aware instant ``days`` from today at ``hour:minute`` in the school's local time."""
    day = datetime.now(settings.timezone).date() + timedelta(days=days)
    return datetime.combine(day, time(hour, minute), tzinfo=settings.timezone).astimezone(UTC)


@dataclass
class FamilyRecords:
    invoice: Invoice
    payment: Payment
    communication: Communication


@pytest.fixture
def add_family_records(sessions: SessionFactory) -> Callable[..., Any]:
    """``await add_family_records(family, teacher)`` → an invoice, a payment and an email of that family."""

    async def add(family: Family, teacher: Teacher | None = None) -> FamilyRecords:
        tag = _tag()
        async with transaction(sessions) as session:
            account = BillingAccount(parent_id=family.parent.id, workflow_id=f"billing-{tag}")
            session.add(account)
            await session.flush()
            invoice = Invoice(
                billing_account_id=account.id, stripe_invoice_id=f"in_{tag}", status="paid", amount_due_minor=14000
            )
            session.add(invoice)
            await session.flush()
            payment = Payment(
                billing_account_id=account.id, invoice_id=invoice.id, status="succeeded", amount_minor=14000
            )
            communication = Communication(
                dedup_key=f"welcome-{tag}",
                template="welcome",
                recipient=family.parent.email,
                subject="Welcome",
                parent_id=family.parent.id,
                teacher_id=teacher.id if teacher else None,
            )
            session.add_all([payment, communication])
        return FamilyRecords(invoice, payment, communication)

    return add
