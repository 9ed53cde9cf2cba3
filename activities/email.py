"""Sending one templated email exactly once, for any capability: ``EmailActivities.send_email(SendEmail)``.

The ``communications`` row, keyed by ``dedup_key``, is the record and the lock: the activity takes the row
``FOR UPDATE``, does nothing when it is already ``sent``, otherwise sends and marks it ``sent`` in the same
transaction. A public-action email (``domain.public_mail``) to an address that already had its day's cap is not
sent: the row says ``suppressed`` and the activity succeeds. An SMTP failure is recorded on the row (attempts,
error) and raised, so Temporal retries with backoff until the server is back. The one window left is a crash
between the SMTP server's "250" and the commit; the ``X-Cedar-Dedup-Key`` header lets a receiving system drop
that rare second copy.

Workflows pass ids, not addresses or names: the recipient and the people's names are read here, so no personal
data enters workflow history, and a set-password link is minted here too, so no secret does either.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.templates import TemplateError, render
from core.contracts.email import EmailResult, SendEmail
from core.db import SessionFactory, transaction
from core.identity import IdentityProvider
from core.mail import Mailer, OutgoingEmail
from core.mail_cap import SUPPRESSED_REASON, public_cap_reached
from core.page_links import FAMILY_PATH, TEACHER_DEMOS_PATH, TEACHER_LESSONS_PATH, enrollment_status_path
from core.settings import Settings
from core.tokens import hash_token
from domain.local_time import format_local
from models import (
    Communication,
    CommunicationStatus,
    Enrollment,
    Lesson,
    Parent,
    Student,
    Teacher,
    TokenPurpose,
    User,
)


class EmailActivities:
    def __init__(self, settings: Settings, sessions: SessionFactory, mailer: Mailer, identity: IdentityProvider):
        self._settings = settings
        self._sessions = sessions
        self._mailer = mailer
        self._identity = identity

    @activity.defn(name="send_email")
    async def send_email(self, request: SendEmail) -> EmailResult:
        async with transaction(self._sessions) as session:
            existing = await self._lock_row(session, request.dedup_key)
            if existing is not None and existing.status == CommunicationStatus.sent:
                return EmailResult(communication_id=existing.id, already_sent=True)
            if existing is not None and existing.status == CommunicationStatus.suppressed:
                return EmailResult(communication_id=existing.id, already_sent=False, suppressed=True)
            context, recipient, ids, parent = await self._gather(session, request)
            if await public_cap_reached(session, self._settings, request.template, recipient, request.dedup_key):
                # Recorded, not raised: a retry could never succeed, and the address has had enough mail today.
                row = existing or await self._create_row(session, request, recipient, "", ids)
                row.status, row.error = CommunicationStatus.suppressed, SUPPRESSED_REASON
                return EmailResult(communication_id=row.id, already_sent=False, suppressed=True)
            fragments = dict(request.fragments)
            if request.include_login:
                fragments["login_instructions"] = await self._login_instructions(session, parent, context)
            if request.include_confirmation:
                enrollment = await session.get(Enrollment, request.enrollment_id) if request.enrollment_id else None
                context.update(self._confirmation(enrollment))
            try:
                rendered = render(request.template, context, fragments)
            except TemplateError as exc:
                raise ApplicationError(str(exc), type="TemplateError", non_retryable=True) from exc
            row = existing or await self._create_row(session, request, recipient, rendered.subject, ids)
            row.attempts += 1
            email = OutgoingEmail(recipient, rendered.subject, rendered.text, rendered.html, request.dedup_key)
            try:
                row.message_id = await self._mailer.send(email)
            except Exception as exc:  # SMTP down or refusing: record it, then let Temporal retry
                row.status, row.error = CommunicationStatus.failed, f"{type(exc).__name__}: {exc}"[:2000]
                failure: str | None = type(exc).__name__
            else:
                row.status, row.error, row.sent_at = CommunicationStatus.sent, None, datetime.now(UTC)
                failure = None
        if failure is not None:
            # The SMTP server's words (which may quote the address) stay on the row, out of history and logs.
            raise ApplicationError(
                f"sending {request.template} failed ({failure}); details on communication {row.id}", type="SmtpError"
            )
        return EmailResult(communication_id=row.id, already_sent=False)

    async def _lock_row(self, session: AsyncSession, dedup_key: str) -> Communication | None:
        found: Communication | None = await session.scalar(
            select(Communication).where(col(Communication.dedup_key) == dedup_key).with_for_update(key_share=True)
        )
        return found

    async def _create_row(
        self, session: AsyncSession, request: SendEmail, recipient: str, subject: str, ids: dict[str, Any]
    ) -> Communication:
        # ON CONFLICT: a concurrent attempt may have inserted it since our look-up; then lock theirs.
        await session.execute(
            insert(Communication)
            .values(
                id=uuid.uuid4(),
                dedup_key=request.dedup_key,
                template=request.template,
                recipient=recipient,
                subject=subject[:300],
                status=CommunicationStatus.pending,
                attempts=0,
                created_at=datetime.now(UTC),
                **ids,
            )
            .on_conflict_do_nothing(index_elements=["dedup_key"])
        )
        row = await self._lock_row(session, request.dedup_key)
        assert row is not None
        return row

    async def _gather(
        self, session: AsyncSession, request: SendEmail
    ) -> tuple[dict[str, Any], str, dict[str, uuid.UUID | None], Parent | None]:
        """The template's context (without login instructions, which mint a link only for an email that goes
        out), the recipient's address, the row's ids and the parent, read from the database."""
        settings = self._settings
        context: dict[str, Any] = {
            "school_name": settings.school_name,
            "school_url": settings.public_base_url,
            # A family's own page (api/pages/family.py): receipts and reminders send parents there.
            "family_url": f"{settings.public_base_url}{FAMILY_PATH}",
            # A teacher's notices link to their pages (api/pages/teacher.py), through sign-in when needed.
            "teacher_lessons_url": settings.public_base_url + TEACHER_LESSONS_PATH,
            "teacher_demos_url": settings.public_base_url + TEACHER_DEMOS_PATH,
        }
        ids: dict[str, uuid.UUID | None] = {
            "parent_id": request.parent_id,
            "teacher_id": request.teacher_id,
            "enrollment_id": request.enrollment_id,
        }
        if request.enrollment_id is not None:
            context.update(await self._enrollment_context(session, request.enrollment_id, ids))
        parent = await session.get(Parent, ids["parent_id"]) if ids["parent_id"] else None
        teacher = await session.get(Teacher, ids["teacher_id"]) if ids["teacher_id"] else None
        if parent is not None:
            context["parent_first_name"] = parent.first_name
        if teacher is not None:
            context["teacher_display_name"] = teacher.display_name
        enrollment = await session.get(Enrollment, request.enrollment_id) if request.enrollment_id else None
        context.update(request.context)
        for key in request.local_times:
            if context.get(key):
                context[key] = format_local(datetime.fromisoformat(str(context[key])), settings.timezone)
        if request.to == "office" and not request.recipient:
            return context, settings.office_email, ids, parent
        recipient = request.recipient or self._address(request.to, parent, teacher, enrollment)
        return context, recipient, ids, parent

    async def _enrollment_context(
        self, session: AsyncSession, enrollment_id: uuid.UUID, ids: dict[str, uuid.UUID | None]
    ) -> dict[str, Any]:
        enrollment = await session.get(Enrollment, enrollment_id)
        if enrollment is None:
            raise ApplicationError(f"enrollment {enrollment_id} not found", non_retryable=True)
        ids["parent_id"] = ids["parent_id"] or enrollment.parent_id
        ids["teacher_id"] = ids["teacher_id"] or enrollment.teacher_id
        student = await session.get(Student, enrollment.student_id) if enrollment.student_id else None
        demo = await session.get(Lesson, enrollment.demo_lesson_id) if enrollment.demo_lesson_id else None
        tz = self._settings.timezone
        # Before the account step the student exists only in the application (which an erasure may have blanked).
        applicant = enrollment.application.get("student", {}).get("first_name", "")
        return {
            "student_first_name": student.first_name if student else applicant,
            "instrument": enrollment.instrument,
            "lesson_minutes": enrollment.lesson_minutes,
            "demo_at_local": format_local(demo.starts_at, tz) if demo else "",
            # The enrollment's status page (api/pages/links.py), not the JSON behind it.
            "status_url": self._settings.public_base_url + enrollment_status_path(enrollment.id),
            "teacher_display_name": "",
        }

    async def _login_instructions(self, session: AsyncSession, parent: Parent | None, context: dict[str, Any]) -> str:
        """The fragment telling the parent how to sign in (a set-password link when they have no password yet),
        its values added to ``context``."""
        if parent is None or parent.user_id is None:
            raise ApplicationError("include_login needs the parent's account", non_retryable=True)
        user = await session.get(User, parent.user_id)
        if user is not None and user.password_hash:
            return "login_sign_in"
        link = await self._identity.create_password_link(session, parent.user_id, TokenPurpose.set_password)
        context["set_password_link"] = link
        context["set_password_days"] = self._settings.set_password_ttl.days or 1
        return "login_set_password"

    def _confirmation(self, enrollment: Enrollment | None) -> dict[str, Any]:
        if enrollment is None:
            raise ApplicationError("include_confirmation needs the enrollment", non_retryable=True)
        secret = secrets.token_urlsafe(32)
        enrollment.confirmation_token_hash = hash_token(secret)
        link = f"{self._settings.public_base_url}/confirm-enrollment?enrollment={enrollment.id}&token={secret}"
        return {"confirmation_link": link, "confirm_days": self._settings.family_confirmation_timeout.days or 1}

    @staticmethod
    def _address(to: str | None, parent: Parent | None, teacher: Teacher | None, enrollment: Enrollment | None) -> str:
        if to == "applicant" and enrollment is not None and enrollment.application.get("parent", {}).get("email"):
            return str(enrollment.application["parent"]["email"]).strip().lower()
        person = parent if to == "parent" else teacher if to == "teacher" else None
        if person is None:
            raise ApplicationError(f"no recipient: give recipient, or to= with its id ({to})", non_retryable=True)
        return person.email
