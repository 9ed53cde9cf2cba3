"""Substitutes and transfers on the real stack: a substitute for one lesson and for a range (all or nothing, pay
follows who taught, capacity unchanged, undone by deleting it), and a transfer to another teacher from a date
(both teachers' places right, lessons ahead with the new teacher, a full teacher refused with nothing changed)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import delete, select
from sqlmodel import col
from temporalio.client import Client
from temporalio.worker import Replayer

from core.db import SessionFactory, transaction
from core.settings import Settings
from models import AuditLog, Enrollment, Lesson, Teacher, TeacherAvailability
from tests.school_api.conftest import API, Family, TeacherAccount, future_local
from tests.teacher_changes.conftest import local_day, sent, utc
from tests.waiting import eventually
from workers.main import workflow_runner
from workflows.teacher_changes import SubstitutionWorkflow, TeacherTransferWorkflow


async def _lesson(sessions: SessionFactory, lesson_id: object) -> Lesson:
    async with sessions() as session:
        found = await session.get(Lesson, uuid.UUID(str(lesson_id)))
        assert found is not None
        return found


async def _load(sessions: SessionFactory, *teachers: TeacherAccount) -> list[tuple[int, int]]:
    async with sessions() as session:
        rows = [await session.get(Teacher, t.teacher.id, populate_existing=True) for t in teachers]
        return [(row.active_students, row.capacity) for row in rows if row is not None]


async def _replays(temporal_client: Client, workflow_id: str) -> None:
    replayer = Replayer(
        workflows=[SubstitutionWorkflow, TeacherTransferWorkflow],
        workflow_runner=workflow_runner(),
        data_converter=temporal_client.data_converter,
    )
    history = await temporal_client.get_workflow_handle(workflow_id).fetch_history()
    assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None


async def _set_load(sessions: SessionFactory, teacher: TeacherAccount, active: int, capacity: int = 20) -> None:
    async with transaction(sessions) as session:
        row = await session.get(Teacher, teacher.teacher.id)
        assert row is not None
        row.capacity, row.active_students = capacity, active


async def test_a_substitute_for_one_lesson_and_a_range_then_undone(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Client,
    run_worker: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
    school_year: Callable[..., Any],
) -> None:
    _, admin = await school_year()
    family, other_family = await make_family(), await make_family()
    regular, sub = await make_teacher(), await make_teacher()
    await _set_load(sessions, regular, 1)
    student = family.students[0]
    started = await add_lesson(regular.teacher, student, datetime.now(UTC) - timedelta(hours=2))
    ahead = [await add_lesson(regular.teacher, student, future_local(settings, day, 16)) for day in (3, 4, 5)]
    # The substitute teaches someone else at the third lesson's time.
    await add_lesson(sub.teacher, other_family.students[0], future_local(settings, 5, 16))
    url = f"{API}/teachers/{regular.teacher.id}/substitutions"
    async with run_worker():
        one = await api.post(
            url, json={"substitute_teacher_id": str(sub.teacher.id), "lesson_id": str(started.id)}, headers=admin
        )
        assert one.status_code == 201, one.text
        assert [row["teacher_id"] for row in one.json()["lessons"]] == [str(sub.teacher.id)]
        assert one.json()["lessons"][0]["regular_teacher_id"] == str(regular.teacher.id)
        # The substitute taught it: marked present, the lesson is paid to them, not to the regular teacher.
        marked = await api.post(f"{API}/lessons/{started.id}/attendance", json={"attendance": "present"}, headers=admin)
        assert marked.status_code == 200, marked.text
        today = datetime.now(settings.timezone).date()
        period = {"period_start": str(today - timedelta(days=1)), "period_end": str(today + timedelta(days=1))}
        report = await api.get(f"{API}/teacher-pay/report", params=period, headers=admin)
        assert report.status_code == 200, report.text
        paid = {line["teacher_id"]: line["lessons_taught"] for line in report.json()["lines"]}
        assert (paid.get(str(sub.teacher.id)), paid.get(str(regular.teacher.id), 0)) == (1, 0)

        # A range the substitute is not wholly free for: a 409 naming the lesson in the way, and nothing changes.
        days = {
            "from_date": local_day(settings, ahead[0].starts_at),
            "to_date": local_day(settings, ahead[2].starts_at),
        }
        busy = await api.post(url, json={"substitute_teacher_id": str(sub.teacher.id), **days}, headers=admin)
        assert busy.status_code == 409, busy.text
        assert busy.json()["error"] == "substitute_not_free"
        assert list(busy.json()["fields"]) == [f"lesson {ahead[2].id}"]
        assert {(await _lesson(sessions, lesson.id)).teacher_id for lesson in ahead} == {regular.teacher.id}

        days["to_date"] = local_day(settings, ahead[1].starts_at)
        ranged = await api.post(url, json={"substitute_teacher_id": str(sub.teacher.id), **days}, headers=admin)
        assert ranged.status_code == 201, ranged.text
        substitution_id = ranged.json()["id"]
        assert [row["id"] for row in ranged.json()["lessons"]] == [str(ahead[0].id), str(ahead[1].id)]
        assert (await _lesson(sessions, ahead[1].id)).teacher_id == sub.teacher.id
        assert (await _lesson(sessions, ahead[2].id)).teacher_id == regular.teacher.id
        # The regular teacher keeps the student: capacity unchanged.
        assert await _load(sessions, regular, sub) == [(1, 20), (0, 20)]
        prefix = f"substitution-{substitution_id}-"
        told = {
            f"{prefix}parent-{family.parent.id}",
            f"{prefix}teacher-{sub.teacher.id}",
            f"{prefix}teacher-{regular.teacher.id}",
        }
        await eventually(lambda: sent(sessions, prefix), until=lambda s: set(s) == told, what="three notices")

        undone = await api.delete(f"{url}/{substitution_id}", headers=admin)
        assert undone.status_code == 200, undone.text
        assert undone.json()["undone_at"] is not None
        assert {(await _lesson(sessions, lesson.id)).teacher_id for lesson in ahead} == {regular.teacher.id}
        assert (await _lesson(sessions, ahead[0].id)).regular_teacher_id is None
        # The lesson the substitute taught stays theirs.
        assert (await _lesson(sessions, started.id)).teacher_id == sub.teacher.id
        again = await api.delete(f"{url}/{substitution_id}", headers=admin)
        assert again.status_code == 409
        undo_prefix = f"substitution-{substitution_id}-undo-"
        await eventually(lambda: sent(sessions, undo_prefix), until=lambda s: len(s) == 3, what="undo notices")
    assert set(await sent(sessions, prefix)) == told | set(await sent(sessions, undo_prefix))
    await _replays(temporal_client, f"substitution-{substitution_id}")

    refused = await api.post(url, json={"substitute_teacher_id": str(sub.teacher.id)}, headers=admin)
    assert refused.status_code == 422
    teacher_call = await api.post(
        url, json={"substitute_teacher_id": str(sub.teacher.id), "lesson_id": str(ahead[2].id)}, headers=sub.headers
    )
    assert teacher_call.status_code == 403
    async with sessions() as session:
        actions = set(
            await session.scalars(select(col(AuditLog.action)).where(col(AuditLog.entity_type) == "substitution"))
        )
    assert actions == {"substitute", "substitute_undo"}


async def _enrollment(sessions: SessionFactory, family: Family, teacher: TeacherAccount) -> Enrollment:
    async with transaction(sessions) as session:
        enrollment = Enrollment(
            request_hash="0" * 64,
            workflow_id=f"enrollment-test-{uuid.uuid4().hex}",
            state="active",
            parent_id=family.parent.id,
            student_id=family.students[0].id,
            teacher_id=teacher.teacher.id,
            instrument="piano",
            lesson_minutes=30,
            billing_interval="month",
            application={},
            stripe_payment_method_id="pm_card_visa",
        )
        session.add(enrollment)
    return enrollment


async def test_a_transfer_moves_the_place_and_the_lessons_ahead_and_a_full_teacher_changes_nothing(
    api: httpx.AsyncClient,
    settings: Settings,
    sessions: SessionFactory,
    temporal_client: Client,
    run_worker: Callable[..., Any],
    make_family: Callable[..., Any],
    make_teacher: Callable[..., Any],
    add_lesson: Callable[..., Any],
    school_year: Callable[..., Any],
) -> None:
    _, admin = await school_year()
    family, other_family = await make_family(), await make_family()
    old, new, full = await make_teacher(), await make_teacher(), await make_teacher()
    await _set_load(sessions, old, 1)
    await _set_load(sessions, full, 1, capacity=1)
    enrollment = await _enrollment(sessions, family, old)
    student = family.students[0]
    before = await add_lesson(old.teacher, student, future_local(settings, 1, 16))
    same = await add_lesson(old.teacher, student, future_local(settings, 3, 16))
    clash = await add_lesson(old.teacher, student, future_local(settings, 10, 16))
    async with transaction(sessions) as session:
        for lesson_id in (before.id, same.id, clash.id):
            row = await session.get(Lesson, lesson_id)
            assert row is not None
            row.enrollment_id = enrollment.id
    # The new teacher is busy at the last lesson's time: it moves to their nearest free slot (15:30, the earlier
    # of the two half-hours either side).
    await add_lesson(new.teacher, other_family.students[0], future_local(settings, 10, 16))
    url = f"{API}/enrollments/{enrollment.id}/transfer"
    from_date = local_day(settings, future_local(settings, 2, 12))

    refused = await api.post(url, json={"teacher_id": str(full.teacher.id), "from_date": from_date}, headers=admin)
    assert refused.status_code == 409, refused.text
    assert refused.json()["fields"] == {"teacher_id": "has no free place"}
    assert await _load(sessions, old, full) == [(1, 20), (1, 1)]
    async with sessions() as session:
        unchanged = await session.get(Enrollment, enrollment.id)
        assert unchanged is not None
        assert unchanged.teacher_id == old.teacher.id
    assert (await _lesson(sessions, same.id)).teacher_id == old.teacher.id

    # A teacher who does not teach the instrument, or has no free time for a lesson: 409, nothing changes.
    async with transaction(sessions) as session:
        violin_row = await session.get(Teacher, full.teacher.id)
        assert violin_row is not None
        violin_row.instruments, violin_row.capacity = ["violin"], 20
    violin = await api.post(url, json={"teacher_id": str(full.teacher.id), "from_date": from_date}, headers=admin)
    assert violin.status_code == 409, violin.text
    assert violin.json()["fields"] == {"teacher_id": "does not teach piano"}
    never_free = await make_teacher()
    async with transaction(sessions) as session:
        await session.execute(
            delete(TeacherAvailability).where(col(TeacherAvailability.teacher_id) == never_free.teacher.id)
        )
    no_slot = await api.post(
        url, json={"teacher_id": str(never_free.teacher.id), "from_date": from_date}, headers=admin
    )
    assert no_slot.status_code == 409, no_slot.text
    assert no_slot.json()["error"] == "no_free_slot"
    assert await _load(sessions, old, never_free) == [(1, 20), (0, 20)]
    assert (await _lesson(sessions, same.id)).teacher_id == old.teacher.id

    async with run_worker():
        moved = await api.post(url, json={"teacher_id": str(new.teacher.id), "from_date": from_date}, headers=admin)
        assert moved.status_code == 200, moved.text
        body = moved.json()
        assert (body["previous_teacher_id"], body["teacher_id"]) == (str(old.teacher.id), str(new.teacher.id))
        starts = {row["id"]: utc(row["starts_at"]) for row in body["lessons"]}
        assert starts == {str(same.id): same.starts_at, str(clash.id): future_local(settings, 10, 15, 30)}
        key = f"teacher-transfer-{enrollment.id}-{from_date}-"
        told = {f"{key}parent-{family.parent.id}", f"{key}teacher-{new.teacher.id}", f"{key}teacher-{old.teacher.id}"}
        await eventually(lambda: sent(sessions, key), until=lambda s: set(s) == told, what="three notices")
    assert await _load(sessions, old, new) == [(0, 20), (1, 20)]
    await _replays(temporal_client, f"teacher-transfer-{enrollment.id}-{from_date}")
    assert (await _lesson(sessions, before.id)).teacher_id == old.teacher.id  # before the date: unchanged
    assert {(await _lesson(sessions, i)).teacher_id for i in (same.id, clash.id)} == {new.teacher.id}
    async with sessions() as session:
        transferred = await session.get(Enrollment, enrollment.id)
        assert transferred is not None
        assert transferred.teacher_id == new.teacher.id
        audited = await session.scalar(select(AuditLog).where(col(AuditLog.action) == "teacher_transfer"))
        assert audited is not None

    same_teacher = await api.post(url, json={"teacher_id": str(new.teacher.id), "from_date": from_date}, headers=admin)
    assert same_teacher.status_code == 422
    assert "teacher_id" in same_teacher.json()["fields"]
    assert (await api.post(url, json={"teacher_id": str(old.teacher.id)}, headers=admin)).status_code == 422
