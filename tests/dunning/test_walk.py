"""A failed payment walks through every state and ends cancelled; a payment at any state returns to clear."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import col
from temporalio.client import Client
from temporalio.worker import Replayer

from core.db import SessionFactory
from core.settings import Settings
from core.temporal import DUNNING_STATE
from devstack.smtp_sink import SmtpSink
from models import BillingAccount, Enrollment, Teacher
from tests.dunning.conftest import DunningKit, failure, lesson_statuses, sent_templates
from workers.main import workflow_runner
from workflows.dunning import FamilyDunningWorkflow


async def test_unpaid_invoice_walks_to_cancelled_with_every_notice(
    kit: DunningKit,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
    dunning_settings: Settings,
    temporal_client: Client,
) -> None:
    family = kit.family
    await kit.fail(failure(family))
    # Billing is asked to retry at each offset (+1, +2, +5, +8 s); each retry fails again.
    for attempt in (2, 3, 4, 5):
        retries = await kit.wait_retries(attempt - 1)
        assert [r.attempt for r in retries] == list(range(2, attempt + 1))
        assert not any(r.check_only for r in retries)
        await kit.dunning.signal("invoice_failed", failure(family, attempt=attempt))
        if attempt == 4:
            await kit.wait_state("suspended", lessons_suspended=True)
            assert await lesson_statuses(sessions, family) == ["suspended"] * 3
    await kit.wait_state("cancelled")
    result = await kit.dunning.result()
    assert result == "cancelled"

    recorded = await kit.recorded()
    assert [w.stripe_invoice_ids for w in recorded.write_offs] == [["in_1"]]
    assert recorded.write_offs[0].end_subscriptions
    assert await lesson_statuses(sessions, family) == ["cancelled"] * 3
    async with sessions() as session:
        enrollment = await session.get(Enrollment, family.enrollment_id)
        teacher = await session.get(Teacher, family.teacher_id)
    assert enrollment is not None
    assert enrollment.state == "cancelled"
    assert teacher is not None
    assert teacher.active_students == 0
    kinds = await sent_templates(sessions, family)
    assert kinds == [
        "payment_failed",
        "payment_failed",
        "payment_failed",
        "final_warning",
        "payment_failed",
        "suspended",
        "payment_failed",
        "cancelled",
    ]
    description = await kit.dunning.describe()
    assert description.typed_search_attributes.get(DUNNING_STATE) == "cancelled"
    async with sessions() as session:
        account_state = await session.scalar(
            select(col(BillingAccount.dunning_state)).where(col(BillingAccount.parent_id) == family.parent_id)
        )
    assert account_state is None  # the stand-in billing made no account; record_state tolerates that
    teacher_mail = [m["subject"] for m in smtp_sink.messages(to=family.teacher_email)]
    assert sorted(teacher_mail) == ["Lessons cancelled: 3 upcoming lesson(s)", "Lessons on hold: 3 upcoming lesson(s)"]
    parent_mail = smtp_sink.messages(to=family.email)
    # The card link opens the card page (sign-in first), not a JSON route.
    assert any(f"{dunning_settings.public_base_url}/family/card" in m["text"].split() for m in parent_mail)

    # The whole walk replays deterministically (what a worker restart or a code change must preserve).
    replayer = Replayer(
        workflows=[FamilyDunningWorkflow],
        workflow_runner=workflow_runner(),
        data_converter=temporal_client.data_converter,
    )
    replay = await replayer.replay_workflow(await kit.dunning.fetch_history(), raise_on_replay_failure=False)
    assert replay.replay_failure is None
