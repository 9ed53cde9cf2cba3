"""Re-enrollment (docs/school-year.md): the office opens it for a semester, a family answers its offers, the office
reads who answered what and a semester's weekly schedule per teacher.

The family's workflow (``reenrollment-{parent_id}-{semester_id}``) decides: answers go to it as an update whose
validator refuses after the deadline (409); reads come from its mirror, ``reenrollment_offers``.
"""

from __future__ import annotations

import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import Conflict, NotFound
from api.principal import Principal
from api.repositories import reenrollments as repository
from api.repositories.audit import audit_write
from api.repositories.base import invalid
from api.schemas.reenrollments import AnswersIn, ReenrollmentOpen
from api.temporal_calls import bounded
from core.contracts.reenrollment import (
    UPDATE_ANSWER,
    AnswerRequest,
    OfferAnswer,
    ReenrollmentStatus,
    parse_reenrollment_id,
    reenrollment_workflow_id,
)
from core.reenrollment import families_to_offer, start_reenrollments
from core.settings import Settings
from domain.reenrollment import Answer, SemesterDates, default_deadline, next_semester
from models import Role, Semester

WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_WORKFLOW = "the family's re-enrollment workflow"


def _dates(semester: Semester) -> SemesterDates:
    return SemesterDates(semester.id, semester.start_date, semester.end_date)


async def open_for_semester(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    semester_id: uuid.UUID,
    body: ReenrollmentOpen,
) -> dict[str, Any]:
    """Starts the re-enrollment of every family with an active student in the semester (a family's started one
    is left as it is); the count of families."""
    ending = await repository.semester(session, semester_id)
    all_dates = [_dates(s) for s in await repository.semesters(session)]
    if body.next_semester_id is not None:
        following = next((s for s in all_dates if s.id == body.next_semester_id), None)
        if following is None:
            raise invalid("next_semester_id", "no such semester")
        if following.start <= ending.end_date:
            raise invalid("next_semester_id", "the next semester must start after this one ends")
    else:
        following = next_semester(all_dates, _dates(ending))
        if following is None:
            raise invalid("next_semester_id", "no semester starts after this one: add the next one first")
    now = datetime.now(UTC)
    deadline = body.deadline or default_deadline(
        now, _dates(ending), settings.reenrollment_answer_time, settings.timezone
    )
    if deadline <= now:
        raise invalid("deadline", "must be in the future")
    default = body.default or settings.reenrollment_default
    parents = await families_to_offer(session, settings, _dates(ending))
    async with bounded(settings.temporal_update_timeout, _WORKFLOW):
        ids = await start_reenrollments(temporal, settings, parents, ending.id, following.id, deadline, default)
    opened = {
        "semester_id": ending.id,
        "next_semester_id": following.id,
        "deadline": deadline,
        "default": default,
        "families": len(ids),
        "reenrollment_ids": ids,
    }
    after = {key: str(value) for key, value in opened.items() if key != "reenrollment_ids"}
    await audit_write(session, principal, "reenrollment_open", "semester", ending.id, after=after)
    return opened


def _answer(returning: bool | None) -> Answer:
    if returning is None:
        return Answer.not_answered
    return Answer.returning if returning else Answer.not_returning


def _offer_out(row: repository.OfferRow) -> dict[str, Any]:
    offer = row.offer
    return {
        "reenrollment_id": offer.workflow_id,
        "parent_id": offer.parent_id,
        "enrollment_id": offer.enrollment_id,
        "student_id": offer.student_id,
        "student_first_name": row.student.first_name,
        "student_last_name": row.student.last_name,
        "instrument": row.instrument,
        "teacher_id": offer.teacher_id,
        "teacher_display_name": row.teacher.display_name,
        "weekday": offer.weekday,
        "weekday_name": WEEKDAYS[offer.weekday],
        "local_time": offer.local_time,
        "lesson_minutes": offer.lesson_minutes,
        "same_as_now": offer.same_as_now,
        "answer": _answer(offer.returning),
        "answered_by": offer.answered_by,
        "answered_at": offer.answered_at,
        "outcome": offer.outcome,
    }


async def office_list(session: AsyncSession, semester_id: uuid.UUID, answer: Answer | None) -> list[dict[str, Any]]:
    await repository.semester(session, semester_id)
    rows = [_offer_out(row) for row in await repository.offers(session, semester_id)]
    return [row for row in rows if answer is None or row["answer"] == answer]


def _family_of(principal: Principal, reenrollment_id: str) -> tuple[uuid.UUID, uuid.UUID]:
    """(parent, semester) of a re-enrollment the caller may see: another family's is not found."""
    parsed = parse_reenrollment_id(reenrollment_id)
    if parsed is None or (principal.role != Role.admin and parsed[0] != principal.parent_id):
        raise NotFound("re-enrollment")
    return parsed


async def family_view(session: AsyncSession, principal: Principal, reenrollment_id: str) -> dict[str, Any]:
    parent_id, semester_id = _family_of(principal, reenrollment_id)
    rows = await repository.offers(session, semester_id, parent_id)
    if not rows:
        raise NotFound("re-enrollment")
    first = rows[0].offer
    following = await repository.semester(session, first.next_semester_id)
    return {
        "reenrollment_id": reenrollment_workflow_id(parent_id, semester_id),
        "parent_id": parent_id,
        "semester_id": semester_id,
        "next_semester_id": first.next_semester_id,
        "next_semester_name": following.name,
        "deadline": first.deadline,
        "default": first.default_answer,
        "open": datetime.now(UTC) < first.deadline and all(r.offer.outcome == "open" for r in rows),
        "offers": [_offer_out(row) for row in rows],
    }


async def answer(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    reenrollment_id: str,
    body: AnswersIn,
) -> dict[str, Any]:
    """The family's answers, through the workflow (409 once the deadline has passed or for an enrollment it did
    not offer); the offers as they now stand."""
    parent_id, semester_id = _family_of(principal, reenrollment_id)
    request = AnswerRequest(
        answers=[OfferAnswer(enrollment_id=a.enrollment_id, returning=a.returning) for a in body.answers],
        answered_by="office" if principal.role == Role.admin else "family",
        actor_user_id=principal.user_id,
    )
    handle = temporal.get_workflow_handle(reenrollment_workflow_id(parent_id, semester_id))
    timeout = settings.temporal_update_timeout
    try:
        async with bounded(timeout, _WORKFLOW):
            await handle.execute_update(UPDATE_ANSWER, request, result_type=ReenrollmentStatus, rpc_timeout=timeout)
    except WorkflowUpdateFailedError as error:
        reason = getattr(error.cause, "message", None) or str(error)
        raise Conflict(reason, {"answers": reason}) from error
    except RPCError as error:
        if error.status != RPCStatusCode.NOT_FOUND:
            raise
        if not await repository.offers(session, semester_id, parent_id):
            raise NotFound("re-enrollment") from error
        closed = "re-enrollment is closed: the deadline has passed"
        raise Conflict(closed, {"answers": closed}) from error
    after = {"semester_id": str(semester_id), "answers": {str(a.enrollment_id): a.returning for a in body.answers}}
    await audit_write(session, principal, "reenrollment_answer", "parent", parent_id, after=after)
    return await family_view(session, principal, reenrollment_id)


async def schedule(
    session: AsyncSession,
    settings: Settings,
    principal: Principal,
    semester_id: uuid.UUID,
    teacher_id: uuid.UUID | None,
) -> list[dict[str, Any]]:
    """Each teacher's weekly lessons in the semester (a teacher sees only their own): student, weekday, local
    time, minutes and how many lessons."""
    if principal.role == Role.teacher:
        if teacher_id is not None and teacher_id != principal.teacher_id:
            raise NotFound("teacher")
        teacher_id = principal.teacher_id
        if teacher_id is None:
            return []
    term = await repository.semester(session, semester_id)
    tz = settings.timezone
    counts: Counter[tuple[Any, ...]] = Counter()
    people: dict[tuple[Any, ...], repository.BookedLesson] = {}
    for lesson in await repository.weekly_lessons(session, settings, term, teacher_id):
        local = lesson.starts_at.astimezone(tz)
        minutes = int((lesson.ends_at - lesson.starts_at).total_seconds() // 60)
        key = (lesson.teacher.id, lesson.student.id, local.weekday(), local.time(), minutes)
        counts[key] += 1
        people.setdefault(key, lesson)
    rows = []
    for key, count in counts.items():
        booked = people[key]
        rows.append(
            {
                "teacher_id": booked.teacher.id,
                "teacher_display_name": booked.teacher.display_name,
                "student_id": booked.student.id,
                "student_first_name": booked.student.first_name,
                "student_last_name": booked.student.last_name,
                "weekday": key[2],
                "weekday_name": WEEKDAYS[key[2]],
                "local_time": key[3],
                "lesson_minutes": key[4],
                "lessons": count,
            }
        )
    return sorted(rows, key=lambda r: (r["teacher_display_name"], r["weekday"], r["local_time"]))


@dataclass(frozen=True)
class OpenForFamily:
    """A re-enrollment waiting for the family's answers: where to answer, by when, how many children are left."""

    semester_id: uuid.UUID
    deadline: datetime
    unanswered: int


async def open_for_family(session: AsyncSession, parent_id: uuid.UUID) -> list[OpenForFamily]:
    """The family's re-enrollments still open, one per ending semester, for its home page."""
    by_semester: dict[uuid.UUID, list[Any]] = {}
    for offer in await repository.open_offers_of(session, parent_id, datetime.now(UTC)):
        by_semester.setdefault(offer.semester_id, []).append(offer)
    return [
        OpenForFamily(semester_id, offers[0].deadline, sum(1 for o in offers if o.returning is None))
        for semester_id, offers in by_semester.items()
    ]
