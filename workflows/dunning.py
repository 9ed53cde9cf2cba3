"""FamilyDunningWorkflow: the calendar of a family that owes money (one per family, ``family-dunning-{parent}``).

Billing signal-with-starts it on a failed payment and tells it about payments and new cards; it asks billing to
retry, re-check or write off (billing owns every money operation). Its state follows the age of the family's
earliest unpaid invoice (domain.dunning): clear → warning → suspended → cancelled. It ends when the family is
clear again or cancelled, and continues-as-new when its history grows.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from datetime import datetime, timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from zoneinfo import ZoneInfo

    from activities.dunning import DunningActivities
    from activities.email import EmailActivities
    from core.contracts.billing import SIGNAL_RETRY_INVOICE, SIGNAL_WRITE_OFF, RetryInvoice, WriteOff
    from core.contracts.dunning import (
        FAMILY_DUNNING_WORKFLOW,
        QUERY_STATE,
        SIGNAL_CARD_UPDATED,
        SIGNAL_FORGIVE,
        SIGNAL_INVOICE_FAILED,
        SIGNAL_INVOICE_PAID,
        SIGNAL_PAUSE,
        SIGNAL_REEVALUATE,
        SIGNAL_RESUME,
        SIGNAL_RETRY_NOW,
        UPDATE_FORGIVE,
        UPDATE_PAUSE,
        UPDATE_RESUME,
        UPDATE_RETRY_NOW,
        AdminAction,
        CardUpdated,
        DunningCarried,
        DunningConfig,
        DunningEvent,
        DunningSnapshot,
        FamilyDunningInput,
        FamilyRef,
        InvoiceFailed,
        InvoicePaid,
        LessonsChanged,
        RecordDunningState,
        Reevaluate,
        UnpaidInvoice,
    )
    from core.contracts.email import SendEmail
    from core.page_links import invoice_confirm_path
    from core.temporal import DUNNING_STATE, billing_workflow_id
    from domain.dunning import (
        AUTHENTICATION_REQUIRED,
        DunningNotice,
        DunningPolicy,
        DunningState,
        NoticeKind,
        due_actions,
        is_hard_decline,
        is_worse,
        next_retry,
        next_transition,
        payment_failed_notice,
        state_for,
    )
    from domain.local_time import format_local
    from domain.money import format_money

DB_TIMEOUT, DB_RETRY = timedelta(seconds=30), RetryPolicy(maximum_interval=timedelta(seconds=30))
# SMTP outages are retried for a while; a notice that still fails is logged and shown on the timeline.
EMAIL_TIMEOUT, EMAIL_RETRY = (
    timedelta(seconds=60),
    RetryPolicy(maximum_interval=timedelta(minutes=1), maximum_attempts=10),
)
TIMELINE_LIMIT = 60
# What teachers are told about the family's lessons: the dedup-key part, which is also the wording's fragment
# (activities/templates/_dunning_lessons_<key>.txt); anything else is a restore.
TEACHER_NOTICE = {DunningState.SUSPENDED: "suspended", DunningState.CANCELLED: "cancelled"}
RESTORED_NOTICE = "restored"


@workflow.defn(name=FAMILY_DUNNING_WORKFLOW)
class FamilyDunningWorkflow:
    @workflow.init
    def __init__(self, data: FamilyDunningInput) -> None:
        self._parent_id = data.parent_id
        self._s = data.carried or DunningCarried()
        for invoice in self._s.invoices.values():  # a state carried with a link keeps only that there is one
            invoice.confirm_online, invoice.confirm_url = invoice.confirm_online or bool(invoice.confirm_url), None
        self._config: DunningConfig | None = None
        self._wake = False
        # The run is ending or continuing as new: admin updates answer at once (their requests travel on).
        self._closing = False

    # --- billing's signals ---------------------------------------------------------------------------------

    @workflow.signal(name=SIGNAL_INVOICE_FAILED)
    def invoice_failed(self, failure: InvoiceFailed) -> None:
        invoice = self._s.invoices.get(failure.stripe_invoice_id)
        if invoice is None:
            invoice = UnpaidInvoice(
                invoice_id=failure.invoice_id,
                stripe_invoice_id=failure.stripe_invoice_id,
                amount_due_minor=failure.amount_due_minor,
                first_failed_at=failure.failed_at,
            )
            self._s.invoices[failure.stripe_invoice_id] = invoice
        invoice.first_failed_at = min(invoice.first_failed_at, failure.failed_at)
        invoice.amount_due_minor = failure.amount_due_minor
        invoice.retry_sent_at = None  # whatever we asked of billing is answered
        if failure.outcome_unknown:
            # Never retried blindly: billing re-reads the invoice from Stripe first.
            invoice.unknown_since = workflow.now()
            self._note("outcome_unknown", f"{failure.stripe_invoice_id} attempt {failure.attempt}")
        else:
            invoice.unknown_since = None
            if failure.attempt > invoice.attempts:  # news, not a repeated report or a check's "still unpaid"
                invoice.attempts, invoice.last_attempt_at = failure.attempt, workflow.now()
                invoice.hard_decline = is_hard_decline(failure.decline_code)
                invoice.needs_confirmation = failure.failure_code == AUTHENTICATION_REQUIRED
                invoice.confirm_online = failure.confirm_online or bool(failure.confirm_url)
                invoice.confirm_url = None  # older messages' link: not kept (the email links to Cedar's page)
                self._s.failures_to_notify.append((failure.stripe_invoice_id, failure.attempt))
                code = failure.decline_code or failure.failure_code or "declined"
                self._note("payment_failed", f"{failure.stripe_invoice_id} attempt {failure.attempt} ({code})")
        self._wake = True

    @workflow.signal(name=SIGNAL_INVOICE_PAID)
    def invoice_paid(self, paid: InvoicePaid) -> None:
        if self._s.invoices.pop(paid.stripe_invoice_id, None) is None:
            return
        self._s.last_paid_invoice_id = paid.invoice_id
        self._note("invoice_paid", paid.stripe_invoice_id)
        self._wake = True

    @workflow.signal(name=SIGNAL_CARD_UPDATED)
    def card_updated(self, _: CardUpdated) -> None:
        # Billing retries past-due invoices on the new card itself, right now; from here the automatic
        # retries resume at the next offset (a hard decline was about the old card).
        for invoice in self._s.invoices.values():
            invoice.hard_decline, invoice.needs_confirmation = False, False
            invoice.last_attempt_at = workflow.now()
        self._note("card_updated", "billing retries on the new card; automatic retries resume")
        self._wake = True

    # --- the sweep's and the admins' signals ----------------------------------------------------------------

    @workflow.signal(name=SIGNAL_REEVALUATE)
    def reevaluate(self, nudge: Reevaluate) -> None:
        self._wake = True

    @workflow.signal(name=SIGNAL_PAUSE)
    def pause(self, action: AdminAction) -> None:
        if not self._s.paused:
            self._s.paused, self._s.paused_since = True, workflow.now()
            self._note_action("paused", action)
            self._wake = True

    @workflow.signal(name=SIGNAL_RESUME)
    def resume(self, action: AdminAction) -> None:
        if not self._s.paused:
            return
        # A pause freezes the family's clock: every deadline moves by the time spent paused.
        held = workflow.now() - (self._s.paused_since or workflow.now())
        for invoice in self._s.invoices.values():
            invoice.first_failed_at += held
        self._s.paused, self._s.paused_since = False, None
        self._note_action("resumed", action)
        self._wake = True

    @workflow.signal(name=SIGNAL_RETRY_NOW)
    def retry_now(self, action: AdminAction) -> None:
        self._s.retry_all_requested = True
        self._note_action("retry_now", action)
        self._wake = True

    @workflow.signal(name=SIGNAL_FORGIVE)
    def forgive(self, action: AdminAction) -> None:
        if self._s.invoices:
            self._s.forgive_requested = True
            self._s.forgive_note_id = action.note_id
            self._note_action("forgiven", action)
            self._wake = True

    # --- the admins' updates: refused by their validators when the state forbids them ----------------------

    @workflow.update(name=UPDATE_PAUSE)
    def pause_update(self, action: AdminAction) -> DunningSnapshot:
        self.pause(action)
        return self.snapshot()

    @pause_update.validator
    def _can_pause(self, action: AdminAction) -> None:
        if self._s.paused:
            raise ValueError("dunning is already paused for this family")

    @workflow.update(name=UPDATE_RESUME)
    def resume_update(self, action: AdminAction) -> DunningSnapshot:
        self.resume(action)
        return self.snapshot()

    @resume_update.validator
    def _can_resume(self, action: AdminAction) -> None:
        if not self._s.paused:
            raise ValueError("dunning is not paused for this family")

    @workflow.update(name=UPDATE_RETRY_NOW)
    async def retry_now_update(self, action: AdminAction) -> DunningSnapshot:
        self.retry_now(action)
        # Answered once the retries are asked of billing, so the snapshot shows them.
        await workflow.wait_condition(lambda: not self._s.retry_all_requested or self._settled())
        return self.snapshot()

    @retry_now_update.validator
    def _can_retry_now(self, action: AdminAction) -> None:
        self._require_unpaid()

    @workflow.update(name=UPDATE_FORGIVE)
    async def forgive_update(self, action: AdminAction) -> DunningSnapshot:
        self.forgive(action)
        # Answered once billing is asked to write the debt off, so the snapshot shows the family clear.
        await workflow.wait_condition(lambda: not self._s.forgive_requested or self._settled())
        return self.snapshot()

    @forgive_update.validator
    def _can_forgive(self, action: AdminAction) -> None:
        self._require_unpaid()

    def _require_unpaid(self) -> None:
        if not self._s.invoices:
            raise ValueError("this family has no unpaid invoice")
        if self._s.state == DunningState.CANCELLED:
            raise ValueError("this family's dunning has ended: it is cancelled for non-payment")

    def _settled(self) -> bool:
        return self._closing or not self._s.invoices or self._s.state == DunningState.CANCELLED

    @workflow.query(name=QUERY_STATE)
    def snapshot(self) -> DunningSnapshot:
        return DunningSnapshot(
            parent_id=self._parent_id,
            state=self._s.state,
            paused=self._s.paused,
            lessons_suspended=self._s.lessons_suspended,
            invoices=self._unpaid_oldest_first(),
            next_action_at=self._next_wake(workflow.now()) if self._config else None,
            timeline=self._s.timeline,
        )

    # --- the loop -------------------------------------------------------------------------------------------

    @workflow.run
    async def run(self, data: FamilyDunningInput) -> str:
        self._config = await workflow.execute_local_activity_method(
            DunningActivities.config,
            FamilyRef(parent_id=self._parent_id),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        workflow.upsert_search_attributes([DUNNING_STATE.value_set(self._s.state)])
        while True:
            self._wake = False
            await self._evaluate()
            if self._wake:
                continue  # news arrived while evaluating: evaluate again before deciding anything
            if self._s.state == DunningState.CANCELLED or not self._s.invoices:
                break
            if workflow.info().is_continue_as_new_suggested():
                self._closing = True
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(FamilyDunningInput(parent_id=self._parent_id, carried=self._s))
            wake_at = self._next_wake(workflow.now())
            timeout = None if wake_at is None else max(wake_at - workflow.now(), timedelta(milliseconds=1))
            with suppress(TimeoutError):  # the timer fired: something is due
                await workflow.wait_condition(lambda: self._wake, timeout=timeout)
        self._closing = True
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._s.state

    def _policy(self) -> DunningPolicy:
        config = self._require_config()
        return DunningPolicy(config.warning_after, config.suspend_after, config.cancel_after, config.retry_offsets)

    def _require_config(self) -> DunningConfig:
        if self._config is None:
            raise ApplicationError("dunning configuration not loaded", non_retryable=True)
        return self._config

    def _unpaid_oldest_first(self) -> list[UnpaidInvoice]:
        return sorted(self._s.invoices.values(), key=lambda invoice: invoice.first_failed_at)

    def _oldest(self) -> UnpaidInvoice | None:
        unpaid = self._unpaid_oldest_first()
        return unpaid[0] if unpaid else None

    def _next_wake(self, now: datetime) -> datetime | None:
        """The earliest moment something is due: a state boundary, a retry, or a re-check."""
        config, policy, oldest = self._require_config(), self._policy(), self._oldest()
        moments: list[datetime] = []
        if not self._s.paused:
            boundary = next_transition(oldest.first_failed_at if oldest else None, now, policy)
            moments += [boundary] if boundary else []
        for invoice in self._s.invoices.values():
            # Checks go on while paused: they never charge, and a charge that did go through must be known.
            if invoice.unknown_since is not None:
                moments.append(invoice.unknown_since + config.unknown_recheck_after)
            elif invoice.retry_sent_at is not None:
                moments.append(invoice.retry_sent_at + config.unknown_recheck_after)
            elif not (invoice.hard_decline or invoice.needs_confirmation) and not self._s.paused:
                retry = self._scheduled_retry(invoice)
                moments += [retry] if retry else []
        return min(moments, default=None)

    def _scheduled_retry(self, invoice: UnpaidInvoice) -> datetime | None:
        """The first retry offset (from the first failure) after the latest attempt: an offset that passed
        while another attempt was made (a card update, an admin's retry) is used up, so retries never burst.
        None when Stripe owns retries (settings.payment_retries_owner)."""
        if self._require_config().retries_owner != "cedar":
            return None
        return next_retry(invoice.first_failed_at, invoice.last_attempt_at, self._policy())

    async def _evaluate(self) -> None:
        now = workflow.now()
        if self._s.forgive_requested:
            await self._write_off("forgiven by an admin", end_subscriptions=False, note_id=self._s.forgive_note_id)
            self._s.forgive_requested, self._s.forgive_note_id = False, None
        oldest = self._oldest()
        previous = DunningState(self._s.state)
        current = state_for(oldest.first_failed_at if oldest else None, now, self._policy())
        if self._s.paused and is_worse(current, previous):
            current = previous  # a paused family gets no worse; a payment still clears it
        await self._notify_failures()
        if current != previous:
            await self._transition(previous, current, oldest)
        elif self._s.paused != self._s.mirrored_paused:
            await self._mirror()
        if current != DunningState.CANCELLED:
            await self._ask_billing_to_collect(now)

    async def _transition(self, previous: DunningState, current: DunningState, oldest: UnpaidInvoice | None) -> None:
        self._s.state = current.value
        self._note("state", f"{previous.value} → {current.value}")
        workflow.upsert_search_attributes([DUNNING_STATE.value_set(current.value)])
        await self._mirror()
        driving = str(oldest.invoice_id) if oldest else str(self._s.last_paid_invoice_id)
        family = FamilyRef(parent_id=self._parent_id)
        if current == DunningState.CANCELLED:
            await self._write_off("cancelled for non-payment", end_subscriptions=True)
            changed = await self._lessons(DunningActivities.cancel_family, family)
            self._s.lessons_suspended = False
            await self._tell_teachers(changed, current, driving)
        elif current == DunningState.SUSPENDED and not self._s.lessons_suspended:
            changed = await self._lessons(DunningActivities.suspend_lessons, family)
            self._s.lessons_suspended = True
            await self._tell_teachers(changed, current, driving)
        elif current != DunningState.SUSPENDED and self._s.lessons_suspended:
            changed = await self._lessons(DunningActivities.restore_lessons, family)
            self._s.lessons_suspended = False
            await self._tell_teachers(changed, current, driving)
        for notice in due_actions(driving, previous, current):
            await self._send_notice(notice, oldest)

    async def _lessons(
        self, step: Callable[[DunningActivities, FamilyRef], Awaitable[LessonsChanged]], family: FamilyRef
    ) -> LessonsChanged:
        return await workflow.execute_local_activity_method(
            step, family, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
        )

    async def _mirror(self) -> None:
        """billing_accounts carries the state and the pause for admin lists and the sweep."""
        await workflow.execute_local_activity_method(
            DunningActivities.record_state,
            RecordDunningState(parent_id=self._parent_id, state=self._s.state, paused=self._s.paused),
            start_to_close_timeout=DB_TIMEOUT,
            retry_policy=DB_RETRY,
        )
        self._s.mirrored_paused = self._s.paused

    async def _notify_failures(self) -> None:
        while self._s.failures_to_notify:
            stripe_invoice_id, attempt = self._s.failures_to_notify[0]
            invoice = self._s.invoices.get(stripe_invoice_id)
            if invoice is not None and self._s.state != DunningState.CANCELLED:
                await self._send_notice(payment_failed_notice(str(invoice.invoice_id), attempt), invoice)
            self._s.failures_to_notify.pop(0)

    async def _ask_billing_to_collect(self, now: datetime) -> None:
        config = self._require_config()
        retry_all, self._s.retry_all_requested = self._s.retry_all_requested, False
        for invoice in self._unpaid_oldest_first():
            if invoice.retry_sent_at and invoice.retry_sent_at + config.unknown_recheck_after <= now:
                # Billing never answered our retry: its outcome is unknown, so check before anything else.
                invoice.retry_sent_at, invoice.unknown_since = None, invoice.retry_sent_at
            if invoice.unknown_since is not None:
                if invoice.unknown_since + config.unknown_recheck_after <= now:
                    invoice.unknown_since = now  # the next check, if this one goes unanswered too
                    self._note("check_requested", invoice.stripe_invoice_id)
                    await self._signal_billing(
                        SIGNAL_RETRY_INVOICE,
                        RetryInvoice(
                            stripe_invoice_id=invoice.stripe_invoice_id, attempt=invoice.attempts, check_only=True
                        ),
                    )
                continue
            if invoice.retry_sent_at is not None:
                continue
            due = self._scheduled_retry(invoice)
            blocked = invoice.hard_decline or invoice.needs_confirmation
            scheduled = not self._s.paused and not blocked and due is not None and due <= now
            if retry_all or scheduled:
                invoice.retry_sent_at = invoice.last_attempt_at = now
                retry = RetryInvoice(stripe_invoice_id=invoice.stripe_invoice_id, attempt=invoice.attempts + 1)
                await self._signal_billing(SIGNAL_RETRY_INVOICE, retry)
                self._note("retry_requested", f"{invoice.stripe_invoice_id} attempt {retry.attempt}")

    async def _write_off(self, reason: str, *, end_subscriptions: bool, note_id: uuid.UUID | None = None) -> None:
        if not self._s.invoices:
            return
        oldest = self._oldest()
        ids = [invoice.stripe_invoice_id for invoice in self._unpaid_oldest_first()]
        order = WriteOff(
            stripe_invoice_ids=ids, reason=reason, reason_note_id=note_id, end_subscriptions=end_subscriptions
        )
        await self._signal_billing(SIGNAL_WRITE_OFF, order)
        self._note("write_off", f"{', '.join(ids)}: {reason}")
        if not end_subscriptions and oldest is not None:
            # Forgiven: the debt is billing's to write off; the family is clear from here.
            self._s.last_paid_invoice_id = oldest.invoice_id
            self._s.invoices.clear()

    async def _signal_billing(self, signal: str, message: RetryInvoice | WriteOff) -> None:
        handle = workflow.get_external_workflow_handle(billing_workflow_id(self._parent_id))
        try:
            await handle.signal(signal, message)
        except Exception as exc:  # billing's workflow not running: recorded, the sweep re-evaluates later
            workflow.logger.warning("dunning could not signal billing (%s): %s", signal, exc)
            self._note("billing_unreachable", f"{signal}: {type(exc).__name__}")

    async def _send_notice(self, notice: DunningNotice, invoice: UnpaidInvoice | None) -> None:
        context, fragments = self._notice_context(notice, invoice)
        await self._send(
            SendEmail(
                template=f"dunning_{notice.kind.value}",
                dedup_key=notice.dedup_key,
                to="parent",
                parent_id=self._parent_id,
                context=context,
                fragments=fragments,
            )
        )

    async def _tell_teachers(self, changed: LessonsChanged, state: DunningState, driving: str) -> None:
        key = TEACHER_NOTICE.get(state, RESTORED_NOTICE)
        for teacher in changed.teachers:
            context = {"lesson_count": len(teacher.lesson_times), "lesson_times": "; ".join(teacher.lesson_times)}
            await self._send(
                SendEmail(
                    template="dunning_teacher_notice",
                    dedup_key=f"{driving}:teacher_{key}:{teacher.teacher_id}",
                    to="teacher",
                    teacher_id=teacher.teacher_id,
                    context=context,
                    fragments={"what": f"dunning_lessons_{key}"},
                )
            )

    async def _send(self, email: SendEmail) -> None:
        try:
            await workflow.execute_activity_method(
                EmailActivities.send_email, email, start_to_close_timeout=EMAIL_TIMEOUT, retry_policy=EMAIL_RETRY
            )
        except ActivityError as exc:
            workflow.logger.error("dunning notice %s not sent: %s", email.dedup_key, exc.cause or exc)
            self._note("email_failed", email.dedup_key)

    def _notice_context(
        self, notice: DunningNotice, invoice: UnpaidInvoice | None
    ) -> tuple[dict[str, str], dict[str, str]]:
        """The notice's facts, and for a failed payment the fragment that says what happens next (its words are
        in activities/templates/_dunning_next_step_*.txt)."""
        config = self._require_config()
        tz = ZoneInfo(config.school_timezone)
        context = dict.fromkeys(("amount_due", "invoice_ref", "suspend_on", "cancel_on", "next_step"), "")
        context["card_url"] = config.card_update_url
        context["attempt"] = str(notice.attempt)
        if invoice is None:
            return context, {}
        context["amount_due"] = format_money(invoice.amount_due_minor, config.currency)
        context["invoice_ref"] = invoice.stripe_invoice_id
        context["suspend_on"] = format_local(invoice.first_failed_at + config.suspend_after, tz)
        context["cancel_on"] = format_local(invoice.first_failed_at + config.cancel_after, tz)
        if notice.kind != NoticeKind.PAYMENT_FAILED:
            return context, {}
        retry = self._scheduled_retry(invoice)
        if invoice.needs_confirmation:
            online = invoice.confirm_online or bool(invoice.confirm_url)
            if online:
                context["confirm_url"] = config.public_base_url + invoice_confirm_path(invoice.stripe_invoice_id)
            step = "confirm_online" if online else "confirm_with_bank"
        elif invoice.hard_decline:
            step = "new_card"
        elif retry:
            context["retry_on"] = format_local(retry, tz)
            step = "retry"
        else:
            step = "update_card"
        return context, {"next_step": f"dunning_next_step_{step}"}

    def _note(self, kind: str, detail: str = "", note_id: uuid.UUID | None = None) -> None:
        self._s.timeline.append(DunningEvent(at=workflow.now(), kind=kind, detail=detail, note_id=note_id))
        del self._s.timeline[:-TIMELINE_LIMIT]

    def _note_action(self, kind: str, action: AdminAction) -> None:
        self._note(kind, action.reason, action.note_id)
