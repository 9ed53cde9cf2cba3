"""Recovery at each state, hard declines, card updates, unknown outcomes, two invoices, pause/resume/forgive."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import pytest

from core.contracts.dunning import AdminAction, CardUpdated, InvoicePaid, Reevaluate
from core.db import SessionFactory
from core.settings import Settings
from devstack.smtp_sink import SmtpSink
from tests.dunning.conftest import DunningKit, failure, lesson_statuses, sent_templates
from tests.waiting import eventually


def paid(kit: DunningKit, invoice: str = "in_1") -> InvoicePaid:
    return InvoicePaid(
        parent_id=kit.family.parent_id,
        invoice_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{kit.family.parent_id}/{invoice}"),
        stripe_invoice_id=invoice,
        paid_at=datetime.now(UTC),
    )


@pytest.mark.parametrize("reached", ["warning", "suspended"])
async def test_a_payment_returns_the_family_to_clear_and_restores_lessons(
    kit: DunningKit, sessions: SessionFactory, smtp_sink: SmtpSink, reached: str
) -> None:
    await kit.fail(failure(kit.family, decline_code="stolen_card"))  # hard: no retries muddle the timeline
    await kit.wait_state(reached)
    await kit.dunning.signal("invoice_paid", paid(kit))
    assert await kit.dunning.result() == "clear"
    assert await lesson_statuses(sessions, kit.family) == ["scheduled"] * 3
    kinds = await sent_templates(sessions, kit.family)
    assert kinds[-1] == "recovered"
    assert ("suspended" in kinds) == (reached == "suspended")
    teacher_subjects = {m["subject"] for m in smtp_sink.messages(to=kit.family.teacher_email)}
    expected = {"Lessons on hold: 3 upcoming lesson(s)", "Lessons back on your calendar: 3 upcoming lesson(s)"}
    assert teacher_subjects == (expected if reached == "suspended" else set())
    assert (await kit.recorded()).write_offs == []


async def test_a_payment_before_the_warning_ends_dunning_quietly(kit: DunningKit, sessions: SessionFactory) -> None:
    await kit.fail(failure(kit.family))
    await eventually(lambda: sent_templates(sessions, kit.family), timeout=5, what="the payment-failed email")
    await kit.dunning.signal("invoice_paid", paid(kit))
    assert await kit.dunning.result() == "clear"
    assert await sent_templates(sessions, kit.family) == ["payment_failed"]  # the receipt is billing's


async def test_hard_decline_skips_retries_until_a_new_card_arrives(
    kit: DunningKit, sessions: SessionFactory, smtp_sink: SmtpSink
) -> None:
    await kit.fail(failure(kit.family, decline_code="lost_card"))
    snap = await kit.wait_state("warning")  # past the +1 s and +2 s retry offsets
    assert snap.invoices[0].hard_decline
    assert (await kit.recorded()).retries == []
    [notice] = [m for m in smtp_sink.messages(to=kit.family.email) if "failed" in m["subject"]]
    assert "please add a new card" in notice["text"]

    # Billing charges the new card at once itself; dunning resumes its retries at the next offset (+5 s),
    # never bursting through the offsets that passed meanwhile.
    card = CardUpdated(parent_id=kit.family.parent_id, stripe_payment_method_id="pm_new")
    await kit.dunning.signal("card_updated", card)

    async def decline_forgotten() -> bool:
        return not (await kit.snapshot()).invoices[0].hard_decline

    await eventually(decline_forgotten, timeout=5, what="the hard decline forgotten")
    assert (await kit.recorded()).retries == []
    [retry] = await kit.wait_retries(1, timeout=4)
    assert (retry.stripe_invoice_id, retry.attempt, retry.check_only) == ("in_1", 2, False)
    await kit.dunning.signal("invoice_paid", paid(kit))
    assert await kit.dunning.result() == "clear"


async def test_a_payment_the_bank_wants_confirmed_asks_the_parent_and_is_not_retried(
    kit: DunningKit, smtp_sink: SmtpSink, settings: Settings
) -> None:
    # Stripe's hosted page is looked up when the parent follows Cedar's link: its address is never carried.
    link = f"{settings.public_base_url}/family/invoices/in_1/confirm"
    await kit.fail(failure(kit.family, failure_code="authentication_required", confirm_online=True))
    snap = await kit.wait_state("warning")  # past the +1 s and +2 s retry offsets
    assert snap.invoices[0].needs_confirmation
    assert snap.invoices[0].confirm_url is None
    assert not snap.invoices[0].hard_decline
    assert (await kit.recorded()).retries == []  # an off-session retry cannot confirm anything
    [notice] = [m for m in smtp_sink.messages(to=kit.family.email) if "failed" in m["subject"]]
    assert f"Your bank asks you to confirm this payment here: {link}" in notice["text"]
    await kit.dunning.signal("invoice_paid", paid(kit))  # the parent confirmed on Stripe's page
    assert await kit.dunning.result() == "clear"


async def test_an_admin_retry_now_asks_billing_at_once(kit: DunningKit) -> None:
    await kit.fail(failure(kit.family, decline_code="stolen_card"))
    await kit.dunning.signal("retry_now", AdminAction(reason="parent says the bank fixed it"))
    # A hard decline schedules no retry of its own: only retry_now can make this one, however long it takes.
    [retry] = await kit.wait_retries(1)
    assert (retry.attempt, retry.check_only) == (2, False)


async def test_an_unknown_outcome_is_checked_never_retried_blindly(kit: DunningKit, sessions: SessionFactory) -> None:
    await kit.fail(failure(kit.family, outcome_unknown=True))
    # Unanswered, the check is repeated (every 2 s here); never a charge while the outcome is unknown.
    checks = await kit.wait_retries(2, timeout=8)
    assert [(c.check_only, c.attempt) for c in checks] == [(True, 0), (True, 0)]
    assert "payment_failed" not in await sent_templates(sessions, kit.family)  # nothing is known to have failed

    await kit.dunning.signal("invoice_failed", failure(kit.family, attempt=1))  # billing's check: it did fail
    snap = await kit.snapshot()
    assert (snap.invoices[0].unknown_since, snap.invoices[0].attempts) == (None, 1)

    async def failure_notice_sent() -> bool:
        return "payment_failed" in await sent_templates(sessions, kit.family)

    await eventually(failure_notice_sent, timeout=5, what="the payment-failed email")
    await kit.dunning.signal("invoice_paid", paid(kit))
    assert await kit.dunning.result() == "clear"


async def test_the_earliest_unpaid_invoice_drives_the_state(kit: DunningKit, sessions: SessionFactory) -> None:
    await kit.fail(failure(kit.family, "in_1", decline_code="expired_card"))
    await asyncio.sleep(2)  # deliberately 2 s apart: the two invoices must reach the boundaries at different times
    await kit.dunning.signal("invoice_failed", failure(kit.family, "in_2", decline_code="expired_card"))
    snap = await kit.wait_state("warning", timeout=5)
    assert [invoice.stripe_invoice_id for invoice in snap.invoices] == ["in_1", "in_2"]
    # Paying the earliest: the state follows in_2, which is younger (clear), until it ages into a warning too.
    await kit.dunning.signal("invoice_paid", paid(kit, "in_1"))
    snap = await kit.wait_state("clear", timeout=5)
    assert [invoice.stripe_invoice_id for invoice in snap.invoices] == ["in_2"]
    await kit.wait_state("warning", timeout=6)
    expected = ["payment_failed", "payment_failed", "final_warning", "recovered", "final_warning"]

    async def all_sent() -> bool:
        return await sent_templates(sessions, kit.family) == expected

    await eventually(all_sent, timeout=5, what=f"emails {expected}")


async def test_pause_freezes_the_clock_resume_restarts_it_forgive_clears(
    kit: DunningKit, sessions: SessionFactory
) -> None:
    await kit.fail(failure(kit.family))
    await kit.dunning.signal("pause", AdminAction(reason="family called the office"))
    await asyncio.sleep(4)  # proves nothing happens while paused: past the warning boundary and two retry offsets
    snap = await kit.snapshot()
    assert (snap.state, snap.paused) == ("clear", True)
    assert (await kit.recorded()).retries == []

    await kit.dunning.signal("resume", AdminAction(reason="no agreement"))
    assert (await kit.snapshot()).paused is False
    await kit.wait_state("warning", timeout=6)
    await kit.dunning.signal("forgive", AdminAction(reason="hardship"))
    assert await kit.dunning.result() == "clear"
    write_offs = (await kit.recorded()).write_offs
    assert [(w.stripe_invoice_ids, w.end_subscriptions) for w in write_offs] == [(["in_1"], False)]
    assert (await sent_templates(sessions, kit.family))[-1] == "recovered"
    assert await lesson_statuses(sessions, kit.family) == ["scheduled"] * 3


async def test_a_long_history_continues_as_new_carrying_the_state(kit: DunningKit) -> None:
    await kit.fail(failure(kit.family, decline_code="stolen_card"))
    await kit.dunning.signal("pause", AdminAction(reason="hold while we talk"))
    first_run = (await kit.dunning.describe()).run_id

    async def new_run() -> str | None:
        # Signals grow the history until the server suggests continue-as-new (200 events in tests).
        for _ in range(10):
            await kit.dunning.signal("reevaluate", Reevaluate(reason="test"))
        run_id = (await kit.dunning.describe()).run_id
        return run_id if run_id != first_run else None

    await eventually(new_run, timeout=30, what="a continued-as-new run")
    snap = await kit.snapshot()
    assert (snap.paused, [i.stripe_invoice_id for i in snap.invoices]) == (True, ["in_1"])
    assert snap.invoices[0].hard_decline
    assert any(event.kind == "paused" for event in snap.timeline)
    await kit.dunning.signal("invoice_paid", paid(kit))
    assert await kit.dunning.result() == "clear"
