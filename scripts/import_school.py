"""Moving a school in: ``./cedar import --teachers T.csv --families F.csv --lessons L.csv`` (docs/import.md).

Every file is read and every rule checked first (``domain/school_import.py``); any problem is printed as
``file:line:column: message`` and nothing is written (exit 1). Then everything is written in one transaction:
teachers and parents get their logins without a password (they set one through the reset link), families their
consents as recorded, each current weekly lesson becomes an active enrollment with its lessons booked for the rest
of the semester, and every row made gets an audit row whose actor is ``import``. Run again with the same files, it
finds every row by its email or natural key and changes nothing. ``--stripe`` then gives each family its Stripe
customer through the billing adapter (``activities/stripe.py``), once per parent; ``--invite-billing`` emails each
family the link where it gives its card and billing starts (``api/services/billing_setup.py``), once per parent.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, cast

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import SQLModel, col

from activities.enrollment import _insert_lesson
from activities.stripe import StripeActivities
from api.errors import CedarError
from api.services.billing_setup import send_invite
from core.audit import record_audit
from core.contracts.billing import EnsureCustomer
from core.db import SessionFactory, create_engine, create_session_factory, lock_keys, schedule_lock_keys, transaction
from core.identity import IdentityProvider, create_identity_service
from core.mail import Mailer
from core.settings import Settings
from core.stripe import create_stripe_client
from core.temporal import enrollment_workflow_id
from domain.calendar import Closure as ClosureDays
from domain.calendar import WeeklyWindow
from domain.enrollment_flow import application_fingerprint, windows_to_json
from domain.enrollment_rules import CLOSED_STATES, EnrollmentState
from domain.school_import import (
    LESSON_COLUMNS,
    ExistingTeacher,
    FamilyIn,
    Format,
    ImportFile,
    LessonIn,
    Problem,
    SchoolContext,
    SchoolIn,
    TeacherIn,
    lesson_from,
    lesson_weeks,
    read_school,
    student_key,
)
from models import (
    BillingAccount,
    Closure,
    Consent,
    ConsentKind,
    Enrollment,
    Instrument,
    LessonKind,
    Parent,
    Role,
    Semester,
    Student,
    Teacher,
    TeacherAvailability,
    User,
)
from scripts.seed_demo import availability_rows, teacher_row

IMPORT_LOCK = "cedar-school-import"
ACTOR = "import"  # the audit rows' actor: no person did it through the product
_CLOSED = [s.value for s in CLOSED_STATES]


class ImportRefused(Exception):
    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = list(problems)


@dataclass
class ImportCounts:
    created: Counter[str] = field(default_factory=Counter)
    unchanged: Counter[str] = field(default_factory=Counter)
    lessons_booked: int = 0
    invites_sent: int = 0
    invites_sent_before: int = 0
    invites_failed: list[str] = field(default_factory=list)  # SMTP refused: asking again sends them
    weeks_taken: int = 0  # weeks another booking already held, skipped as an enrollment's booking skips them

    def lines(self) -> list[str]:
        kinds = ("teachers", "families", "students", "weekly lessons", "stripe customers")
        out = [
            f"{kind}: {self.created[kind]} created, {self.unchanged[kind]} unchanged"
            for kind in kinds
            if self.created[kind] or self.unchanged[kind]
        ]
        if self.lessons_booked or self.weeks_taken:
            out.append(f"lessons booked: {self.lessons_booked} (weeks already taken, skipped: {self.weeks_taken})")
        if self.invites_sent or self.invites_sent_before:
            out.append(f"billing invitations: {self.invites_sent} sent, {self.invites_sent_before} sent before")
        out.append(f"import: {sum(self.created.values())} created, {sum(self.unchanged.values())} unchanged")
        return out


class _DryRun(Exception):
    def __init__(self, counts: ImportCounts) -> None:
        super().__init__("dry run")
        self.counts = counts


# --- what the school already has ---------------------------------------------------------------------------


async def load_context(session: AsyncSession, settings: Settings, now: datetime) -> SchoolContext:
    users = {row[0]: row[1] for row in await session.execute(select(col(User.email), col(User.role)))}
    windows: dict[uuid.UUID, list[WeeklyWindow]] = {}
    for row in await session.scalars(select(TeacherAvailability)):
        windows.setdefault(row.teacher_id, []).append(WeeklyWindow(row.weekday, row.start_time, row.end_time))
    teachers = {
        t.email: ExistingTeacher(
            frozenset(t.instruments), tuple(windows.get(t.id, ())), t.capacity, t.active_students, t.is_active
        )
        for t in await session.scalars(select(Teacher))
    }
    students = select(col(Parent.email), func.lower(col(Student.first_name))).join(
        Parent, col(Parent.id) == col(Student.parent_id)
    )
    live = (
        select(col(Parent.email), func.lower(col(Student.first_name)), col(Enrollment.instrument))
        .join(Student, col(Student.id) == col(Enrollment.student_id))
        .join(Parent, col(Parent.id) == col(Student.parent_id))
        .where(col(Enrollment.state).not_in(_CLOSED))
    )
    semesters = [
        (start, end) for start, end in await session.execute(select(col(Semester.start_date), col(Semester.end_date)))
    ]
    closures = [
        (start, end) for start, end in await session.execute(select(col(Closure.start_date), col(Closure.end_date)))
    ]
    instruments = await session.scalars(select(col(Instrument.code)).where(col(Instrument.is_active)))
    return SchoolContext(
        today=now.astimezone(settings.timezone).date(),
        now=now,
        timezone=settings.timezone,
        instruments=frozenset(instruments),
        lesson_lengths=frozenset(settings.lesson_lengths_minutes),
        min_age=settings.student_min_age,
        max_age=settings.student_max_age,
        semesters=tuple(semesters),
        closures=tuple(ClosureDays(start, end) for start, end in closures),
        user_roles=users,
        teachers=teachers,
        students=frozenset(cast(tuple[str, str], tuple(r)) for r in (await session.execute(students)).all()),
        live_enrollments=frozenset(cast(tuple[str, str, str], tuple(r)) for r in (await session.execute(live)).all()),
    )


# --- writing it --------------------------------------------------------------------------------------------


async def _audit(session: AsyncSession, entity_type: str, row: SQLModel, entity_id: object) -> None:
    await record_audit(
        session,
        actor_user_id=None,
        actor_role=ACTOR,
        action="create",
        entity_type=entity_type,
        entity_id=entity_id,
        after=row.model_dump(mode="json"),
    )


def _local_midnight(day: date, settings: Settings) -> datetime:
    return datetime.combine(day, time(0), tzinfo=settings.timezone)


async def _write_teacher(
    session: AsyncSession, identity: IdentityProvider, teacher: TeacherIn, counts: ImportCounts
) -> None:
    if await session.scalar(select(col(Teacher.id)).where(col(Teacher.email) == teacher.email)) is not None:
        counts.unchanged["teachers"] += 1
        return
    account = await identity.ensure_account(session, teacher.email, Role.teacher)
    row = teacher_row(
        account.user_id, teacher.first_name, teacher.last_name, teacher.email, teacher.instruments, teacher.capacity
    )
    row.bio, row.hourly_rate_minor = teacher.bio, teacher.hourly_rate_minor
    session.add(row)
    await session.flush()
    session.add_all(availability_rows(row.id, ((w.weekday, w.start, w.end) for w in teacher.availability)))
    await _audit(session, "teacher", row, row.id)
    counts.created["teachers"] += 1


async def _write_family(
    session: AsyncSession, identity: IdentityProvider, settings: Settings, family: FamilyIn, counts: ImportCounts
) -> None:
    parent = await session.scalar(select(Parent).where(col(Parent.email) == family.email))
    if parent is not None:
        counts.unchanged["families"] += 1
    else:
        account = await identity.ensure_account(session, family.email, Role.parent)
        parent = Parent(
            user_id=account.user_id,
            first_name=family.first_name,
            last_name=family.last_name,
            email=family.email,
            phone=family.phone,
        )
        session.add(parent)
        await session.flush()
        await _audit(session, "parent", parent, parent.id)
        assert family.privacy_policy_on is not None  # a family without it is a problem, never written
        # Both kinds are recorded, as the enrollment form records them: granted or not, on the day the school says.
        given = {
            ConsentKind.privacy_policy: family.privacy_policy_on,
            ConsentKind.marketing_email: family.marketing_email_on,
        }
        for kind, on in given.items():
            consent = Consent(
                parent_id=parent.id,
                kind=kind,
                granted=on is not None,
                source="import",
                granted_at=_local_midnight(on or family.privacy_policy_on, settings),
            )
            if family.policy_version:
                consent.policy_version = family.policy_version
            session.add(consent)
            await session.flush()
            await _audit(session, "consent", consent, consent.id)
        counts.created["families"] += 1
    for child in family.children:
        found = await session.scalar(
            select(col(Student.id)).where(
                col(Student.parent_id) == parent.id, func.lower(col(Student.first_name)) == child.first_name.lower()
            )
        )
        if found is not None:
            counts.unchanged["students"] += 1
            continue
        student = Student(
            parent_id=parent.id,
            first_name=child.first_name,
            last_name=child.last_name,
            date_of_birth=child.date_of_birth,
            is_active=False,  # active once a weekly lesson of theirs is imported
        )
        session.add(student)
        await session.flush()
        await _audit(session, "student", student, student.id)
        counts.created["students"] += 1


async def _write_lesson(
    session: AsyncSession, context: SchoolContext, lesson: LessonIn, file: str, counts: ImportCounts
) -> Problem | None:
    """The weekly lesson as an enrollment made through Cedar ends up: ``active``, the teacher's place taken, the
    student active, the lessons booked for the rest of the semester."""
    key = student_key(lesson.email, lesson.student_first_name)
    found = (
        await session.execute(
            select(Student, Parent)
            .join(Parent, col(Parent.id) == col(Student.parent_id))
            .where(col(Parent.email) == key[0], func.lower(col(Student.first_name)) == key[1])
            .order_by(col(Student.created_at))
        )
    ).first()
    assert found is not None  # checked before writing: the student is in the file or in Cedar
    student, parent = found
    live = await session.scalar(
        select(col(Enrollment.id)).where(
            col(Enrollment.student_id) == student.id,
            col(Enrollment.instrument) == lesson.instrument,
            col(Enrollment.state).not_in(_CLOSED),
        )
    )
    if live is not None:
        counts.unchanged["weekly lessons"] += 1
        return None
    teacher_id = await session.scalar(
        update(Teacher)
        .where(col(Teacher.email) == lesson.teacher_email, col(Teacher.active_students) < col(Teacher.capacity))
        .values(active_students=col(Teacher.active_students) + 1)
        .returning(col(Teacher.id))
    )
    if teacher_id is None:
        column = LESSON_COLUMNS.index("teacher_email") + 1
        return Problem(file, lesson.line, column, f"teacher_email: {lesson.teacher_email} has no place left")
    now = datetime.now(UTC)
    application: dict[str, Any] = {
        "source": ACTOR,
        "parent": {"first_name": parent.first_name, "last_name": parent.last_name, "email": parent.email},
        "student": {
            "first_name": student.first_name,
            "last_name": student.last_name,
            "date_of_birth": student.date_of_birth.isoformat(),
        },
        "lesson": {"weekday": lesson.weekday, "start": lesson.start.isoformat("minutes"), "line": lesson.line},
    }
    enrollment = Enrollment(
        request_hash=application_fingerprint(application),
        state=EnrollmentState.ACTIVE,
        workflow_id="",
        parent_id=parent.id,
        student_id=student.id,
        teacher_id=teacher_id,
        instrument=lesson.instrument,
        lesson_minutes=lesson.minutes,
        billing_interval=lesson.billing_interval,
        preferred_windows=windows_to_json([lesson.window]),
        application=application,
        stripe_payment_method_id="",
        family_confirmed_at=now,
        steps=[{"state": EnrollmentState.ACTIVE.value, "at": now.isoformat(), "via": ACTOR}],
    )
    # No workflow runs for it: the enrollment's id names the one it would have, as for every other row.
    enrollment.workflow_id = enrollment_workflow_id(enrollment.id)
    session.add(enrollment)
    student.is_active = True
    student.instrument = student.instrument or lesson.instrument
    await session.flush()
    await lock_keys(session, *schedule_lock_keys(teacher_id, student.id))
    weeks = lesson_weeks(context, lesson.weekday, lesson.start, lesson.minutes, lesson_from(context, lesson))
    for start, end in weeks:
        if await _insert_lesson(session, enrollment, LessonKind.regular, start, end) is None:
            counts.weeks_taken += 1
        else:
            counts.lessons_booked += 1
    await _audit(session, "enrollment", enrollment, enrollment.id)
    counts.created["weekly lessons"] += 1
    return None


async def write_school(
    session: AsyncSession,
    identity: IdentityProvider,
    settings: Settings,
    context: SchoolContext,
    school: SchoolIn,
    lessons_file: str = "lessons",
) -> ImportCounts:
    """Writes what is not there yet, in the caller's transaction; a lesson that cannot be placed refuses it all."""
    counts = ImportCounts()
    for teacher in school.teachers:
        await _write_teacher(session, identity, teacher, counts)
    for family in school.families:
        await _write_family(session, identity, settings, family, counts)
    problems = [
        problem
        for lesson in school.lessons
        if (problem := await _write_lesson(session, context, lesson, lessons_file, counts)) is not None
    ]
    if problems:
        raise ImportRefused(problems)
    await session.flush()
    return counts


async def ensure_customers(
    stripe: StripeActivities, sessions: SessionFactory, emails: Sequence[str], counts: ImportCounts
) -> None:
    """Each family's Stripe customer, through the billing adapter: it finds the one made before (ours, or Stripe's
    tagged with the parent's id) rather than making a second."""
    async with transaction(sessions) as session:
        parents = (
            await session.execute(
                select(col(Parent.id), col(BillingAccount.stripe_customer_id))
                .outerjoin(BillingAccount, col(BillingAccount.parent_id) == col(Parent.id))
                .where(col(Parent.email).in_(emails))
            )
        ).all()
    for parent_id, customer_id in parents:
        if customer_id:
            counts.unchanged["stripe customers"] += 1
            continue
        await stripe.ensure_customer(EnsureCustomer(parent_id=parent_id))
        counts.created["stripe customers"] += 1


# --- the command -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportRequest:
    teachers: ImportFile | None = None
    families: ImportFile | None = None
    lessons: ImportFile | None = None
    fmt: Format = "cedar"
    privacy_accepted_on: date | None = None
    stripe: bool = False
    dry_run: bool = False
    invite_billing: bool = False


async def import_school(settings: Settings, sessions: SessionFactory, request: ImportRequest) -> ImportCounts:
    """Validates, then writes in one transaction (rolled back for a dry run); raises :class:`ImportRefused`."""
    identity = create_identity_service(settings)
    try:
        async with transaction(sessions) as session:
            await lock_keys(session, IMPORT_LOCK)  # two imports at once: the second finds the first's rows
            context = await load_context(session, settings, datetime.now(UTC))
            school, problems = read_school(
                context,
                request.teachers,
                request.families,
                request.lessons,
                request.fmt,
                request.privacy_accepted_on,
            )
            if problems:
                raise ImportRefused(problems)
            lessons_file = request.lessons.name if request.lessons else "lessons"
            counts = await write_school(session, identity, settings, context, school, lessons_file)
            if request.dry_run:
                raise _DryRun(counts)
    except _DryRun as dry:
        return dry.counts
    if request.stripe:
        stripe = StripeActivities(create_stripe_client(settings), settings, sessions)
        await ensure_customers(stripe, sessions, [f.email for f in school.families], counts)
    if request.invite_billing:
        emails = sorted({f.email for f in school.families} | {lesson.email for lesson in school.lessons})
        await invite_billing(settings, sessions, identity, emails, counts)
    return counts


async def invite_billing(
    settings: Settings,
    sessions: SessionFactory,
    identity: IdentityProvider,
    emails: Sequence[str],
    counts: ImportCounts,
) -> None:
    """Each family of the files whose imported lessons wait for a card gets the billing set-up email, once per
    parent (the email's dedup key): the same as the office's Invite (``api/services/billing_setup.py``)."""
    mailer = Mailer(settings)
    async with sessions() as session:
        parent_ids = list(await session.scalars(select(col(Parent.id)).where(col(Parent.email).in_(emails))))
    for parent_id in parent_ids:
        async with transaction(sessions) as session:
            try:
                sent = await send_invite(session, sessions, settings, mailer, identity, parent_id)
            except CedarError:
                parent = await session.get(Parent, parent_id)
                counts.invites_failed.append(parent.email if parent else str(parent_id))
                continue
            if sent is None:
                continue
            if sent.already_sent:
                counts.invites_sent_before += 1
            else:
                counts.invites_sent += 1
                await record_audit(
                    session,
                    actor_user_id=None,
                    actor_role=ACTOR,
                    action="invite",
                    entity_type="billing_setup",
                    entity_id=parent_id,
                    after={"communication_id": str(sent.communication_id), "suppressed": sent.suppressed},
                )


def _read(path: str | None) -> ImportFile | None:
    if path is None:
        return None
    return ImportFile(path, Path(path).read_text(encoding="utf-8-sig"))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="./cedar import",
        description="Import a school's teachers, families and weekly lessons from CSV files (docs/import.md).",
    )
    parser.add_argument("--teachers", metavar="CSV", help="teachers, their instruments, availability and capacity")
    parser.add_argument("--families", metavar="CSV", help="parents, their children and consents (one row a child)")
    parser.add_argument("--lessons", metavar="CSV", help="the current weekly lessons")
    parser.add_argument(
        "--format",
        choices=["cedar", "mymusicstaff"],
        default="cedar",
        help="the families file's format: Cedar's, or My Music Staff's student list export",
    )
    parser.add_argument(
        "--privacy-accepted-on",
        type=date.fromisoformat,
        metavar="YYYY-MM-DD",
        help="with --format mymusicstaff: when the families accepted the school's privacy policy",
    )
    parser.add_argument("--stripe", action="store_true", help="also create each family's Stripe customer")
    parser.add_argument("--dry-run", action="store_true", help="check and count, then write nothing")
    parser.add_argument(
        "--invite-billing",
        action="store_true",
        help="email each family whose imported lessons wait for a card the link to set up billing (once a parent)",
    )
    return parser


async def _run(settings: Settings, request: ImportRequest) -> ImportCounts:
    engine = create_engine(settings)
    try:
        return await import_school(settings, create_session_factory(engine), request)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not (args.teachers or args.families or args.lessons):
        parser.error("give at least one of --teachers, --families, --lessons")
    try:
        request = ImportRequest(
            _read(args.teachers),
            _read(args.families),
            _read(args.lessons),
            args.format,
            args.privacy_accepted_on,
            args.stripe,
            args.dry_run,
            args.invite_billing,
        )
    except (OSError, UnicodeDecodeError) as error:
        print(f"import: cannot read {getattr(error, 'filename', None) or 'a file'}: {error}", file=sys.stderr)
        return 2
    try:
        counts = asyncio.run(_run(Settings(), request))
    except ImportRefused as refused:
        for problem in refused.problems:
            print(problem, file=sys.stderr)
        print(f"import: {len(refused.problems)} problem(s); nothing was written", file=sys.stderr)
        return 1
    for email in counts.invites_failed:
        print(
            f"import: the billing invitation to {email} could not be sent; run again with --invite-billing",
            file=sys.stderr,
        )
    for line in counts.lines():
        print(f"dry run: {line}" if args.dry_run else line)
    if args.dry_run:
        print("dry run: nothing was written")
    return 3 if counts.invites_failed else 0


if __name__ == "__main__":
    sys.exit(main())
