"""Cancellations' outcomes and make-up credits on the real stack: the policy, the notices (once each), booking a
make-up, expiry with its reminder, races for one credit and one slot, and the office's grant, extend and void."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlmodel import col
from temporalio.client import Client
from temporalio.worker import Replayer

from core.contracts.makeup import MakeupCreditState
from core.db import SessionFactory
from core.settings import Settings
from core.temporal import makeup_credit_workflow_id
from models import AuditLog, Communication, Lesson, LessonKind, MakeupCredit, Role
from tests.school_api.conftest import API, future_local
from tests.waiting import eventually
from workers.main import workflow_runner
from workflows.makeup import LessonCancellationWorkflow, MakeupCreditWorkflow

MAKEUPS = f"{API}/makeups/credits"


async def _sent(sessions: SessionFactory, prefix: str) -> dict[str, int]:
    """The sent emails whose dedup key starts with ``prefix``: {dedup key: attempts}."""
    async with sessions() as session:
        rows = await session.execute(
            select(col(Communication.dedup_key), col(Communication.attempts)).where(
                col(Communication.dedup_key).startswith(prefix), col(Communication.status) == "sent"
            )
        )
        return {str(key): int(attempts) for key, attempts in rows}


async def _credit(sessions: SessionFactory, credit_id: object) -> MakeupCredit:
    async with sessions() as session:
        found = await session.get(MakeupCredit, uuid.UUID(str(credit_id)))
        assert found is not None
        return found


async def _count(sessions: SessionFactory, *where: Any) -> int:
    async with sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Lesson).where(*where)) or 0)


async def _result(temporal_client: Client, credit_id: str) -> MakeupCreditState:
    handle = temporal_client.get_workflow_handle(makeup_credit_workflow_id(credit_id), result_type=MakeupCreditState)
    return await asyncio.wait_for(handle.result(), 30)


async def test_early_and_late_cancellations_a_makeup_booked_and_the_credit_used_once(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Client,
    run_worker: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family, teacher = await make_family(), await make_teacher()
    early = await add_lesson(teacher.teacher, family.students[0], future_local(settings, 6, 16))
    late = await add_lesson(teacher.teacher, family.students[0], datetime.now(UTC) + settings.parent_cancel_notice / 2)
    async with run_worker():
        credited = await api.post(f"{API}/lessons/{early.id}/cancel", json={"reason": "sick"}, headers=family.headers)
        forfeited = await api.post(f"{API}/lessons/{late.id}/cancel", headers=family.headers)
        assert credited.status_code == forfeited.status_code == 200, (credited.text, forfeited.text)
        assert credited.json()["outcome"] == "credit"
        assert (forfeited.json()["outcome"], forfeited.json()["credit_id"]) == ("forfeited", None)
        credit_id = credited.json()["credit_id"]
        expected = {f"lesson-cancelled-{lesson.id}-{to}" for lesson in (early, late) for to in ("parent", "teacher")}
        sent = await eventually(
            lambda: _sent(sessions, "lesson-cancelled-"), until=lambda s: set(s) == expected, what="4 notices"
        )
        assert set(sent.values()) == {1}

        listed = await api.get(MAKEUPS, headers=family.headers)
        assert [row["id"] for row in listed.json()] == [credit_id]
        assert listed.json()[0]["origin_lesson_id"] == str(early.id)
        slots = await api.get(f"{MAKEUPS}/{credit_id}/slots", headers=family.headers)
        assert slots.status_code == 200, slots.text
        first = slots.json()[0]
        assert first["teacher_id"] == str(teacher.teacher.id)

        booked = await api.post(
            f"{MAKEUPS}/{credit_id}/book", json={"starts_at": first["starts_at"]}, headers=family.headers
        )
        assert booked.status_code == 201, booked.text
        assert booked.json()["lesson"]["kind"] == LessonKind.makeup
        assert booked.json()["credit"]["status"] == "used"
        again = await api.post(
            f"{MAKEUPS}/{credit_id}/book", json={"starts_at": slots.json()[3]["starts_at"]}, headers=family.headers
        )
        assert again.status_code == 422, again.text
        assert again.json()["fields"] == {"credit_id": "the credit is already used"}
        state = await _result(temporal_client, credit_id)
    assert (state.status, str(state.used_lesson_id)) == ("used", booked.json()["lesson"]["id"])
    assert (await _credit(sessions, credit_id)).used_lesson_id == uuid.UUID(booked.json()["lesson"]["id"])
    assert await _count(sessions, col(Lesson.kind) == LessonKind.makeup) == 1
    # Nothing more was sent: the notices went out once each.
    assert set(await _sent(sessions, "lesson-cancelled-")) == expected
    replayer = Replayer(
        workflows=[MakeupCreditWorkflow, LessonCancellationWorkflow],
        workflow_runner=workflow_runner(),
        data_converter=temporal_client.data_converter,
    )
    for workflow_id in (makeup_credit_workflow_id(credit_id), f"lesson-cancellation-{early.id}"):
        history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
        assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None


async def test_an_unused_credit_is_reminded_once_then_expires(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Client,
    run_worker: Callable[..., Any],
    auth_headers: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    admin = await auth_headers(Role.admin)
    # The office shortens the policy (seconds): a credit lives 4 s, with its reminder 2 s before the end.
    policy = {"value": {"credit_lifetime": 4, "reminder_before": 2}, "description": "test timings"}
    assert (await api.put(f"{API}/system-settings/makeup_policy", json=policy, headers=admin)).status_code == 200
    family, teacher = await make_family(), await make_teacher()
    lesson = await add_lesson(teacher.teacher, family.students[0], future_local(settings, 3, 15))
    async with run_worker():
        cancelled = await api.post(f"{API}/lessons/{lesson.id}/cancel", headers=teacher.headers)
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["outcome"] == "credit"  # a teacher's cancellation always earns one
        credit_id = cancelled.json()["credit_id"]
        state = await _result(temporal_client, credit_id)
    assert state.status == "expired"
    assert [event.kind for event in state.events] == ["reminded", "expired"]
    row = await _credit(sessions, credit_id)
    assert row.status == "expired"
    assert row.reminder_sent_at is not None
    assert list((await _sent(sessions, f"makeup-credit-{credit_id}-reminder")).values()) == [1]
    late = await api.post(
        f"{MAKEUPS}/{credit_id}/book",
        json={"starts_at": future_local(settings, 2, 10).isoformat()},
        headers=family.headers,
    )
    assert late.status_code == 422
    assert late.json()["fields"] == {"credit_id": "the credit is expired"}


async def _teacher_credits(api: httpx.AsyncClient, teacher: Any, lessons: list[Lesson]) -> list[str]:
    ids = []
    for lesson in lessons:
        answer = await api.post(f"{API}/lessons/{lesson.id}/cancel", headers=teacher.headers)
        assert answer.status_code == 200, answer.text
        ids.append(answer.json()["credit_id"])
    return ids


async def test_races_for_one_credit_and_for_one_slot_have_one_winner(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    run_worker: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
) -> None:
    family, teacher = await make_family(children=2), await make_teacher()
    first, second = family.students
    lessons = [
        await add_lesson(teacher.teacher, first, future_local(settings, 5, 16)),
        await add_lesson(teacher.teacher, second, future_local(settings, 5, 17)),
        await add_lesson(teacher.teacher, first, future_local(settings, 5, 18)),
    ]
    async with run_worker():
        one, two, three = await _teacher_credits(api, teacher, lessons)

        # Two parents (or tabs) spend the same credit on two different slots: one wins.
        slots = [future_local(settings, 8, 10), future_local(settings, 8, 12)]
        answers = await asyncio.gather(
            *(
                api.post(f"{MAKEUPS}/{one}/book", json={"starts_at": at.isoformat()}, headers=family.headers)
                for at in slots
            )
        )
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        loser = next(a for a in answers if a.status_code == 409).json()
        assert loser["fields"]["credit_id"] == "already used"

        # Two credits (two children) for the same slot of the teacher: one wins.
        at = future_local(settings, 9, 10).isoformat()
        answers = await asyncio.gather(
            *(api.post(f"{MAKEUPS}/{c}/book", json={"starts_at": at}, headers=family.headers) for c in (two, three))
        )
        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        assert next(a for a in answers if a.status_code == 409).json()["error"] == "lesson_conflict"
    assert await _count(sessions, col(Lesson.kind) == LessonKind.makeup) == 2
    statuses = sorted([(await _credit(sessions, c)).status for c in (one, two, three)])
    assert statuses == ["available", "used", "used"]


async def test_the_office_grants_extends_and_voids_credits_with_reasons_in_the_audit_log(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Client,
    run_worker: Callable[..., Any],
    auth_headers: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
) -> None:
    admin = await auth_headers(Role.admin)
    family, teacher = await make_family(), await make_teacher()
    student = family.students[0]
    async with run_worker():
        grant = {"student_id": str(student.id), "teacher_id": str(teacher.teacher.id), "reason": "snow day"}
        granted = await api.post(MAKEUPS, json=grant, headers=admin)
        assert granted.status_code == 201, granted.text
        credit = granted.json()
        assert (await api.post(MAKEUPS, json=grant, headers=family.headers)).status_code == 403

        negative = await api.post(f"{MAKEUPS}/{credit['id']}/extend", json={"days": -3, "reason": "x"}, headers=admin)
        assert negative.status_code == 422
        assert "days" in negative.json()["fields"]
        outside = future_local(settings, 60, 10).isoformat()
        refused = await api.post(f"{MAKEUPS}/{credit['id']}/book", json={"starts_at": outside}, headers=family.headers)
        assert refused.status_code == 422
        assert "starts_at" in refused.json()["fields"]
        assert await _count(sessions, col(Lesson.kind) == LessonKind.makeup) == 0

        extended = await api.post(
            f"{MAKEUPS}/{credit['id']}/extend", json={"days": 3, "reason": "family away"}, headers=admin
        )
        assert extended.status_code == 200, extended.text
        new_expiry = datetime.fromisoformat(extended.json()["expires_at"])
        assert new_expiry - datetime.fromisoformat(credit["expires_at"]) == timedelta(days=3)
        assert [e["kind"] for e in extended.json()["events"]] == ["extended"]

        voided = await api.post(f"{MAKEUPS}/{credit['id']}/void", json={"reason": "refunded"}, headers=admin)
        assert voided.status_code == 200, voided.text
        assert voided.json()["status"] == "void"
        again = await api.post(f"{MAKEUPS}/{credit['id']}/void", json={"reason": "twice"}, headers=admin)
        assert again.status_code == 409
        state = await _result(temporal_client, credit["id"])
        assert list((await _sent(sessions, f"makeup-credit-{credit['id']}-granted")).values()) == [1]
    assert state.status == "void"
    assert (await _credit(sessions, credit["id"])).status == "void"
    async with sessions() as session:
        rows = (
            await session.scalars(
                select(AuditLog).where(col(AuditLog.entity_type) == "makeup_credit").order_by(col(AuditLog.occurred_at))
            )
        ).all()
    assert [row.action for row in rows] == ["makeup_grant", "makeup_extend", "makeup_void"]
    assert [row.after["reason"] for row in rows if row.after] == ["snow day", "family away", "refunded"]
