"""A closure added over days with booked lessons, on the real stack: each lesson cancelled with one make-up credit
(or moved to the teacher's nearest free slot), each family and teacher told once, the outcome on the closure."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any, Literal

import httpx
from sqlalchemy import func, select
from sqlmodel import col
from temporalio.client import Client
from temporalio.worker import Replayer

from activities.closures import ClosureActivities
from api.repositories.makeups import default_policy
from core.contracts.closures import ClosureNoticesRequest, ClosureOutcome, ClosureRef, CreditPolicy, HandleLesson
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.temporal import closure_workflow_id, makeup_credit_workflow_id
from devstack.smtp_sink import SmtpSink
from models import Closure, Communication, Lesson, LessonStatus, MakeupCredit
from tests.school_api.conftest import API, future_local
from tests.teacher_changes.conftest import local_day, sent
from tests.waiting import eventually
from workers.main import workflow_runner
from workflows.closures import ClosureWorkflow


async def _closure(api: httpx.AsyncClient, closure_id: str) -> dict[str, Any]:
    response = await api.get(f"{API}/closures/{closure_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _done(api: httpx.AsyncClient, closure_id: str) -> dict[str, Any]:
    closure = await eventually(
        lambda: _closure(api, closure_id),
        until=lambda c: c["outcome"] is not None and c["outcome"]["done"],
        what="the closure's outcome",
    )
    outcome: dict[str, Any] = closure["outcome"]
    return outcome


async def test_a_closure_over_booked_lessons_cancels_them_credits_and_tells_each_once(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Client,
    smtp_sink: SmtpSink,
    run_worker: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
    school_year: Callable[..., Any],
) -> None:
    year_id, admin = await school_year()
    family, teacher = await make_family(children=2), await make_teacher()
    first = await add_lesson(teacher.teacher, family.students[0], future_local(settings, 6, 16))
    second = await add_lesson(teacher.teacher, family.students[1], future_local(settings, 6, 17))
    other_day = await add_lesson(teacher.teacher, family.students[0], future_local(settings, 7, 16))
    day = local_day(settings, first.starts_at)
    body = {"start_date": day, "end_date": day, "reason": "Snow day"}
    async with run_worker():
        created = await api.post(f"{API}/academic-years/{year_id}/closures", json=body, headers=admin)
        assert created.status_code == 201, created.text
        closure_id = created.json()["id"]
        assert created.json()["lesson_action"] == "cancel"
        outcome = await _done(api, closure_id)
        assert outcome == {
            "lessons": 2,
            "cancelled": 2,
            "moved": 0,
            "credited": 2,
            "families_told": 1,
            "teachers_told": 1,
            "done": True,
        }
        expected = {
            f"closure-{closure_id}-parent-{family.parent.id}",
            f"closure-{closure_id}-teacher-{teacher.teacher.id}",
        }
        assert await sent(sessions, f"closure-{closure_id}-") == dict.fromkeys(expected, 1)
        async with sessions() as session:
            credits = (await session.scalars(select(MakeupCredit))).all()
            statuses = {
                row.id: row.status
                for row in await session.scalars(select(Lesson).where(col(Lesson.teacher_id) == teacher.teacher.id))
            }
        assert {credit.origin_lesson_id for credit in credits} == {first.id, second.id}
        assert statuses == {first.id: "cancelled", second.id: "cancelled", other_day.id: "scheduled"}
        # Each credit has its own workflow, as a cancellation's credit does.
        for credit in credits:
            described = await temporal_client.get_workflow_handle(makeup_credit_workflow_id(credit.id)).describe()
            assert described.status is not None
        handle = temporal_client.get_workflow_handle(closure_workflow_id(closure_id), result_type=ClosureOutcome)
        result = await asyncio.wait_for(handle.result(), 30)
        assert (result.cancelled, result.credited) == (2, 2)
        assert (await handle.query("outcome", result_type=ClosureOutcome)).done

        # The one email lists both lessons, in the school's local time.
        message = next(m for m in smtp_sink.messages(family.parent.email) if "closed" in m["subject"].lower())
        assert message["text"].count("cancelled (a make-up credit was added)") == 2
        assert "4:00 PM" in message["text"]
        assert "5:00 PM" in message["text"]

        # The same closure posted again: nothing left to cancel, nothing credited or sent twice.
        again = await api.post(f"{API}/academic-years/{year_id}/closures", json=body, headers=admin)
        assert again.status_code == 201, again.text
        assert (await _done(api, again.json()["id"]))["lessons"] == 0
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(MakeupCredit)) == 2
        keys = await session.scalars(
            select(col(Communication.dedup_key)).where(col(Communication.dedup_key).startswith("closure-"))
        )
        assert set(keys) == expected
    # Deleting the closure does not restore the lessons.
    deleted = await api.delete(f"{API}/closures/{closure_id}", headers=admin)
    assert deleted.status_code == 204
    async with sessions() as session:
        restored = await session.get(Lesson, first.id)
        assert restored is not None
        assert restored.status == LessonStatus.cancelled
    replayer = Replayer(
        workflows=[ClosureWorkflow], workflow_runner=workflow_runner(), data_converter=temporal_client.data_converter
    )
    history = await temporal_client.get_workflow_handle(closure_workflow_id(closure_id)).fetch_history()
    assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None


async def test_move_finds_the_teachers_nearest_free_slot_after_the_closure(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    run_worker: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
    school_year: Callable[..., Any],
) -> None:
    year_id, admin = await school_year()
    family, other_family, teacher = await make_family(), await make_family(), await make_teacher()
    lesson = await add_lesson(teacher.teacher, family.students[0], future_local(settings, 6, 16))
    # The teacher's first hour the next morning is taken: the nearest free slot after the closure is 10:00.
    await add_lesson(teacher.teacher, other_family.students[0], future_local(settings, 7, 9), minutes=60)
    day = local_day(settings, lesson.starts_at)
    body = {"start_date": day, "end_date": day, "reason": "Power cut", "lesson_action": "move"}
    async with run_worker():
        created = await api.post(f"{API}/academic-years/{year_id}/closures", json=body, headers=admin)
        assert created.status_code == 201, created.text
        closure_id = created.json()["id"]
        outcome = await _done(api, closure_id)
        assert (outcome["moved"], outcome["cancelled"], outcome["credited"]) == (1, 0, 0)
        await eventually(
            lambda: sent(sessions, f"closure-{closure_id}-"), until=lambda s: len(s) == 2, what="two notices"
        )
    async with sessions() as session:
        moved = await session.get(Lesson, lesson.id)
        assert moved is not None
        assert (moved.status, moved.starts_at) == (LessonStatus.scheduled, future_local(settings, 7, 10))
        assert moved.ends_at == future_local(settings, 7, 10, 30)
        assert await session.scalar(select(func.count()).select_from(MakeupCredit)) == 0

    refused = await api.post(
        f"{API}/academic-years/{year_id}/closures", json={**body, "lesson_action": "shift"}, headers=admin
    )
    assert refused.status_code == 422
    assert "lesson_action" in refused.json()["fields"]


async def test_a_retried_lesson_step_finds_what_it_did(
    settings: Settings,
    sessions: SessionFactory,
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
    school_year: Callable[..., Any],
) -> None:
    year_id, _ = await school_year()
    family, teacher = await make_family(children=2), await make_teacher()
    cancelled = await add_lesson(teacher.teacher, family.students[0], future_local(settings, 6, 16))
    moved = await add_lesson(teacher.teacher, family.students[1], future_local(settings, 6, 17))
    day = cancelled.starts_at.astimezone(settings.timezone).date()
    async with transaction(sessions) as session:
        closure = Closure(academic_year_id=uuid.UUID(year_id), start_date=day, end_date=day, reason="Flood")
        session.add(closure)
    activities = ClosureActivities(settings, sessions)
    policy = CreditPolicy(**default_policy(settings).__dict__)
    listed = await activities.lessons(ClosureRef(closure_id=closure.id))
    assert [row.lesson_id for row in listed.lessons] == [cancelled.id, moved.id]

    def step(lesson: Lesson, action: Literal["cancel", "move"]) -> HandleLesson:
        return HandleLesson(
            closure_id=closure.id, lesson_id=lesson.id, starts_at=lesson.starts_at, lesson_action=action, policy=policy
        )

    first = await activities.handle_lesson(step(cancelled, "cancel"))
    again = await activities.handle_lesson(step(cancelled, "cancel"))
    assert first.result == again.result == "cancelled"
    assert first.credit_id is not None
    assert again.credit_id == first.credit_id
    went = await activities.handle_lesson(step(moved, "move"))
    went_again = await activities.handle_lesson(step(moved, "move"))
    assert went.result == went_again.result == "moved"
    assert went.new_starts_at == went_again.new_starts_at == future_local(settings, 7, 9)
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(MakeupCredit)) == 1
    notices = await activities.notices(ClosureNoticesRequest(closure_id=closure.id, handled=[first, went]))
    assert sorted(notice.to for notice in notices.notices) == ["parent", "teacher"]
    assert all(len(notice.lines.splitlines()) == 2 for notice in notices.notices)
