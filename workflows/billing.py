"""One family's billing: the single writer of every money operation of the family (Kill Bill's account lock).

Signals and updates only queue commands; the run loop executes them one at a time, so two operations on one
family never race. Stripe events are re-read from Stripe before they are applied, and every step is idempotent,
so a duplicated, reordered or replayed event changes nothing the second time. The workflow continues-as-new
when Temporal suggests it, carrying its state (and any queued signals) over.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel
from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError, FailureError

with workflow.unsafe.imports_passed_through():
    from activities.billing import BillingActivities
    from activities.email import EmailActivities
    from activities.stripe import StripeActivities
    from core.contracts.billing import (
        FAMILY_BILLING_WORKFLOW,
        QUERY_BALANCE,
        QUERY_OPEN_INVOICES,
        QUERY_SUBSCRIPTIONS,
        SIGNAL_LESSONS_BOOKED,
        SIGNAL_RETRY_INVOICE,
        SIGNAL_STRIPE_EVENT,
        SIGNAL_STUDENT_STARTED,
        SIGNAL_STUDENT_STOPPED,
        SIGNAL_WRITE_OFF,
        UPDATE_ADD_CHARGE,
        UPDATE_CHANGE_CARD,
        UPDATE_REFUND,
        UPDATE_RENEW,
        UPDATE_START_STUDENT,
        AdjustInvoice,
        ApplyInvoice,
        AttachCard,
        BalanceView,
        BeginGap,
        BilledPeriod,
        BillingConfig,
        BillingConfigRequest,
        CancelSubscription,
        CardChange,
        CardResult,
        ChargeInvoice,
        ChargeRef,
        ChargeRefunds,
        ChargeRequest,
        ChargeResult,
        Command,
        CreateAdjustment,
        CreateInvoiceItem,
        CreateRenewal,
        CreateSubscription,
        CycleAnchor,
        CycleAnchorRequest,
        EnsureCustomer,
        EnsurePlan,
        EventOutcome,
        EventRef,
        FailedCommand,
        FamilyBillingInput,
        FamilyBillingState,
        InvoiceAdjusted,
        InvoiceApplied,
        InvoicePaymentRef,
        InvoicePeriod,
        InvoicePeriodRequest,
        InvoiceRef,
        InvoiceSnapshot,
        InvoiceState,
        InvoicesView,
        LessonGap,
        LessonGapRequest,
        LessonPlan,
        LessonPlanRequest,
        LessonsBooked,
        NotifyDunning,
        PayInvoice,
        PaymentFailure,
        PrepareRefund,
        Quote,
        QuoteRequest,
        RecordRefund,
        RefundRequest,
        RefundResult,
        RenewRequest,
        RenewResult,
        Reply,
        RetryInvoice,
        ScheduledCommand,
        ScheduleSubscription,
        SendReceipt,
        StartOutcome,
        StripeEventReceived,
        StudentStarted,
        StudentStopped,
        SubscriptionRef,
        SubscriptionSnapshot,
        SubscriptionState,
        SubscriptionsView,
        WriteOff,
        WriteOffInvoice,
    )
    from core.contracts.dunning import (
        SIGNAL_CARD_UPDATED,
        SIGNAL_INVOICE_FAILED,
        SIGNAL_INVOICE_PAID,
        CardUpdated,
        InvoiceFailed,
        InvoicePaid,
    )
    from core.contracts.email import SendEmail
    from core.temporal import BILLING_ATTENTION, BILLING_STATE
    from domain.billing_rules import trial_end_for
    from domain.dunning import AUTHENTICATION_REQUIRED
    from domain.money import format_money

# Refunds reach us as events about the charge (or the refund) whoever made them; the Stripe dashboard's are
# mirrored into the books like Cedar's own. The patch keeps histories recorded before this from replaying
# differently.
REFUND_EVENTS = frozenset({"charge.refunded", "charge.refund.updated", "refund.created", "refund.updated"})
MIRROR_REFUNDS_PATCH = "mirror-stripe-refunds"
# The registration fee is a one-off charge made on a student's start (once per enrollment: its request id is
# derived from the enrollment id). Histories recorded before it replay without the new step.
REGISTRATION_FEE_PATCH = "registration-fee"
REGISTRATION_FEE_DESCRIPTION = "Registration fee"
REGISTRATION_FEE_NAMESPACE = uuid.UUID("5d0c6f1e-3b8a-4f0e-9c57-2a1d7e4b6c90")


# Billing follows the lessons: renewals bill the next lesson period at the tuition rule's amount, a stop with the
# last lesson's end bills nothing after it and gives back unheld lessons, and a next semester's booking continues the
# subscription. Histories recorded before it replay the old steps.
LESSON_PERIODS_PATCH = "lesson-periods"
# Stripe's cycle on Cedar's periods: a new subscription is anchored to the periods' boundaries, and every period
# invoice (Stripe's own, or a development renewal's, created as a draft the same way) is brought to the rule's amount
# while it is a draft and recorded as the period billed. Subscriptions started before keep their way.
STRIPE_CYCLE_PATCH = "stripe-cycle"
# No invoice for whole periods without lessons: once the last lesson before them has ended (a timer carried in the
# state), the subscription is put in a trial until the start of the period holding the next lesson, and development
# renewals skip such periods. Histories recorded before it replay the zero invoices.
GAP_TRIAL_PATCH = "gap-trial"
# The events about an invoice that can tell billing of a period invoice it has not followed yet.
FOLLOWED_INVOICE_EVENTS = frozenset(
    {"invoice.created", "invoice.updated", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"}
)
# No silent failure: a command that fails with nobody waiting is kept, retried on a schedule and then surfaced; a
# student's start answers its outcome once per enrollment; an event that failed is re-driven the same way.
COMMAND_SAFETY_PATCH = "billing-command-safety"
# Billing's search attributes (attention, open invoice) follow its state so operators can find families.
SEARCH_ATTRIBUTES_PATCH = "billing-search-attributes"
# Receipts are sent beside the single writer with bounded tries: an SMTP outage never holds refunds or card changes.
BOUNDED_EMAIL_PATCH = "bounded-billing-email"
STOP_REFUND_NAMESPACE = uuid.UUID("0f6b7e52-4a1c-4d7e-8f0b-3c2d9a5e7b14")


def stop_refund_request_id(enrollment_id: uuid.UUID, period_key: str) -> uuid.UUID:
    """The refund of a period's unheld lessons: the same for every delivery of one enrollment's stop."""
    return uuid.uuid5(STOP_REFUND_NAMESPACE, f"stop:{enrollment_id}:{period_key}")


def gap_key(enrollment_id: uuid.UUID) -> str:
    """The scheduled pause of one enrollment's billing (one at a time: planning again replaces it)."""
    return f"gap:{enrollment_id}"


def registration_fee_request_id(enrollment_id: uuid.UUID) -> uuid.UUID:
    """The registration fee's charge request id: the same for every delivery of one enrollment's start."""
    return uuid.uuid5(REGISTRATION_FEE_NAMESPACE, f"registration-fee:{enrollment_id}")


STRIPE_TIMEOUT = timedelta(seconds=30)
# Network trouble and Stripe 5xx are retried (each attempt re-reads Stripe first); business refusals are not.
STRIPE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=8,
    non_retryable_error_types=["CardRejected", "RefundRefused", "NotFound", "Conflict", "NoRate"],
)
DB_TIMEOUT = timedelta(seconds=15)
DB_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=10,
    non_retryable_error_types=["NotFound", "Conflict", "NoRate"],
)
EMAIL_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=5))


def _period_part(invoice: InvoiceSnapshot) -> int:
    """What an invoice bills for its period: its amount without Cedar's one-off charges and credits on it."""
    return invoice.amount_due_minor - sum(line.amount_minor for line in invoice.charge_lines)


@workflow.defn(name=FAMILY_BILLING_WORKFLOW)
class FamilyBillingWorkflow:
    @workflow.init
    def __init__(self, request: FamilyBillingInput) -> None:
        # Restored here, not in run(): signals that arrive with the new run are handled before run() starts.
        self._state = request.state if request.state is not None else FamilyBillingState()
        self._parent_id = request.parent_id
        self._replies: dict[str, Reply] = {}
        self._handled_this_run = 0
        self._run_limit: int | None = None
        self._config = BillingConfig(continue_as_new_after_commands=0)
        self._published: tuple[str, str] | None = None  # the search attributes last set in this run
        self._background: set[asyncio.Task[None]] = set()  # emails sent beside the writer
        self._in_flight: str | None = None  # the kind of the command the writer is running

    @workflow.run
    async def run(self, request: FamilyBillingInput) -> None:
        config: BillingConfig = await self._db(BillingActivities.config, BillingConfigRequest())
        self._config = config
        self._run_limit = config.continue_as_new_after_commands
        self._describe()
        while True:
            await self._wait_for_work()
            if not self._history_is_long():
                await self._execute(self._state.pending.pop(0))
                continue
            # Time to continue-as-new, even under a steady stream of events: finish the commands a caller waits
            # on (updates); queued signals travel with the state.
            waited_on = next((c for c in self._state.pending if c.reply_to is not None), None)
            if waited_on is not None:
                self._state.pending.remove(waited_on)
                await self._execute(waited_on)
                continue
            await workflow.wait_condition(workflow.all_handlers_finished)
            if self._background:  # receipts on their way finish in this run (their marks are billing's)
                await workflow.wait_condition(lambda: not self._background)
            if not any(c.reply_to is not None for c in self._state.pending):
                workflow.continue_as_new(FamilyBillingInput(parent_id=request.parent_id, state=self._state))

    async def _wait_for_work(self) -> None:
        """Until a command is queued or the history is long; a scheduled command is queued once its time comes."""
        while True:
            now = workflow.now()
            due = [s for s in self._state.scheduled if s.due <= now]
            for scheduled in due:
                self._state.scheduled.remove(scheduled)
                self._state.pending.append(scheduled.command)
            waiting = min((s.due for s in self._state.scheduled), default=None)
            try:
                await workflow.wait_condition(
                    lambda: bool(self._state.pending) or self._history_is_long(),
                    timeout=None if waiting is None else waiting - now,
                )
                return
            except TimeoutError:
                continue

    def _history_is_long(self) -> bool:
        # Temporal's suggestion, or the school's own cap (settings.billing_continue_as_new_events).
        limit = self._run_limit
        return workflow.info().is_continue_as_new_suggested() or (limit is not None and self._handled_this_run >= limit)

    # --- messages in ---

    @workflow.signal(name=SIGNAL_STUDENT_STARTED)
    def student_started(self, message: StudentStarted) -> None:
        self._enqueue("student_started", message)

    @workflow.signal(name=SIGNAL_STUDENT_STOPPED)
    def student_stopped(self, message: StudentStopped) -> None:
        self._enqueue("student_stopped", message)

    @workflow.signal(name=SIGNAL_LESSONS_BOOKED)
    def lessons_booked(self, message: LessonsBooked) -> None:
        self._enqueue("lessons_booked", message)

    @workflow.signal(name=SIGNAL_STRIPE_EVENT)
    def stripe_event(self, message: StripeEventReceived) -> None:
        queued = {c.payload.get("stripe_event_id") for c in self._state.pending if c.kind == "stripe_event"}
        if message.stripe_event_id not in queued:  # a duplicate delivery already waiting adds nothing
            self._enqueue("stripe_event", message)

    @workflow.signal(name=SIGNAL_RETRY_INVOICE)
    def retry_invoice(self, message: RetryInvoice) -> None:
        self._enqueue("retry_invoice", message)

    @workflow.signal(name=SIGNAL_WRITE_OFF)
    def write_off(self, message: WriteOff) -> None:
        self._enqueue("write_off", message)

    @workflow.update(name=UPDATE_START_STUDENT)
    async def start_student(self, message: StudentStarted) -> StartOutcome:
        """The enrollment's hand-off (update-with-start): answers whether the student's billing started."""
        done = self._state.started.get(str(message.enrollment_id))
        if done is not None:  # a retried hand-off: answered once, as then
            return done
        return StartOutcome.model_validate(await self._submit("student_started", message))

    @start_student.validator
    def _check_start(self, message: StudentStarted) -> None:
        if message.parent_id != self._parent_id:
            raise ApplicationError("the student belongs to another family's billing", type="InvalidRequest")
        if message.lesson_minutes <= 0:
            raise ApplicationError("lesson_minutes must be positive", type="InvalidRequest")
        if message.billing_interval not in ("week", "month"):
            raise ApplicationError("billing_interval must be week or month", type="InvalidRequest")
        if not message.stripe_payment_method_id:
            raise ApplicationError("a payment method is needed to start billing", type="InvalidRequest")

    @workflow.update(name=UPDATE_CHANGE_CARD)
    async def change_card(self, message: CardChange) -> CardResult:
        return CardResult.model_validate(await self._submit("change_card", message))

    @change_card.validator
    def _check_change_card(self, message: CardChange) -> None:
        # No check on the state's customer: a family's account may exist before this run knows it (found on use).
        if not message.stripe_payment_method_id:
            raise ApplicationError("a payment method is needed", type="InvalidRequest")

    @workflow.update(name=UPDATE_REFUND)
    async def refund_payment(self, message: RefundRequest) -> RefundResult:
        return RefundResult.model_validate(await self._submit("refund", message))

    @refund_payment.validator
    def _check_refund(self, message: RefundRequest) -> None:
        if message.amount_minor is not None and message.amount_minor <= 0:
            raise ApplicationError("a refund's amount must be positive", type="InvalidRequest")

    @workflow.update(name=UPDATE_RENEW)
    async def renew_subscription(self, message: RenewRequest) -> RenewResult:
        return RenewResult.model_validate(await self._submit("renew", message))

    @renew_subscription.validator
    def _check_renew(self, message: RenewRequest) -> None:
        # Renewals follow the subscriptions this workflow started (as the handler does). One a start in flight or
        # queued is making is not in the state yet: the handler, behind it, answers for it.
        known = [
            s for s in self._state.subscriptions.values() if s.stripe_subscription_id == message.stripe_subscription_id
        ]
        starting = self._in_flight == "student_started" or any(c.kind == "student_started" for c in self._state.pending)
        if any(s.status == "canceled" for s in known) or (not known and not starting):
            raise ApplicationError("no live subscription to renew", type="NotFound")

    @workflow.update(name=UPDATE_ADD_CHARGE)
    async def add_charge(self, message: ChargeRequest) -> ChargeResult:
        done = self._state.charges.get(str(message.request_id))
        if done is not None:  # a retried request: the charge was made once, answer as then
            return done
        return ChargeResult.model_validate(await self._submit("add_charge", message))

    @add_charge.validator
    def _check_charge(self, message: ChargeRequest) -> None:
        # Refused before it enters history: money back now is a refund of a payment, not a credit.
        if message.kind == "credit" and message.when == "now":
            raise ValueError("a credit goes on the next invoice; to give money back now, refund a payment")
        if self._state.stripe_customer_id is None and not self._state.subscriptions:
            raise ValueError("billing has not started for this family")

    @workflow.query(name=QUERY_SUBSCRIPTIONS)
    def subscriptions(self) -> SubscriptionsView:
        return SubscriptionsView(subscriptions=list(self._state.subscriptions.values()))

    @workflow.query(name=QUERY_OPEN_INVOICES)
    def open_invoices(self) -> InvoicesView:
        return InvoicesView(invoices=list(self._state.open_invoices.values()))

    @workflow.query(name=QUERY_BALANCE)
    def balance(self) -> BalanceView:
        invoices = self._state.open_invoices.values()
        return BalanceView(
            owed_minor=sum(i.amount_due_minor - i.amount_paid_minor for i in invoices), open_invoices=len(invoices)
        )

    def _enqueue(self, kind: str, message: BaseModel, reply_to: str | None = None) -> None:
        self._state.pending.append(Command(kind=kind, payload=message.model_dump(mode="json"), reply_to=reply_to))

    async def _submit(self, kind: str, message: BaseModel) -> dict[str, Any]:
        key = str(workflow.uuid4())
        self._enqueue(kind, message, reply_to=key)
        await workflow.wait_condition(lambda: key in self._replies)
        reply = self._replies.pop(key)
        if reply.error is not None:
            raise ApplicationError(reply.error, type=reply.error_type or "BillingError")
        return reply.result or {}

    # --- the single writer ---

    async def _execute(self, command: Command) -> None:
        handlers: dict[str, tuple[type[BaseModel], Callable[[Any], Awaitable[Any]]]] = {
            "student_started": (StudentStarted, self._start_student),
            "student_stopped": (StudentStopped, self._stop_student),
            "lessons_booked": (LessonsBooked, self._lessons_booked),
            "stripe_event": (StripeEventReceived, self._on_event),
            "retry_invoice": (RetryInvoice, self._retry),
            "write_off": (WriteOff, self._write_off),
            "change_card": (CardChange, self._change_card),
            "refund": (RefundRequest, self._refund),
            "renew": (RenewRequest, self._renew),
            "add_charge": (ChargeRequest, self._add_charge),
            "begin_gap": (BeginGap, self._begin_gap),
        }
        reply = Reply()
        self._in_flight = command.kind
        try:
            model, handler = handlers[command.kind]
            result = await handler(model.model_validate(command.payload))
            reply.result = result.model_dump(mode="json") if isinstance(result, BaseModel) else None
        except (ActivityError, ApplicationError) as error:
            cause = error.cause if isinstance(error, ActivityError) else error
            # The message alone: str() of an ApplicationError puts its type before it, and the reply keeps the type.
            reply.error = cause.message if isinstance(cause, FailureError) else str(error)
            reply.error_type = cause.type if isinstance(cause, ApplicationError) else None
            workflow.logger.warning("billing command %s failed: %s", command.kind, reply.error)
        except workflow.NondeterminismError:
            raise  # the code does not match the history: the task must fail until a fixed worker runs it
        except Exception as error:  # a bug in one command must not stop the family's single writer
            reply.error, reply.error_type = f"{type(error).__name__}: {error}"[:2000], "InternalError"
            workflow.logger.exception("billing command %s failed unexpectedly", command.kind)
        self._in_flight = None
        self._state.commands_handled += 1
        self._handled_this_run += 1
        if command.kind == "student_started" and workflow.patched(COMMAND_SAFETY_PATCH):
            self._remember_start(command, reply)
        if command.reply_to is not None:
            self._replies[command.reply_to] = reply
        elif workflow.patched(COMMAND_SAFETY_PATCH):
            self._keep_failure(command, reply)
        self._publish()

    def _remember_start(self, command: Command, reply: Reply) -> None:
        """A student's start answers once per enrollment: a later start (signal or update) answers the same."""
        enrollment_id = uuid.UUID(str(command.payload["enrollment_id"]))
        key = str(enrollment_id)
        if key in self._state.started and reply.result is None and reply.error is None:
            reply.result = self._state.started[key].model_dump(mode="json")  # a repeat: the first outcome
            return
        if reply.error is None:
            outcome = StartOutcome(enrollment_id=enrollment_id, status="started")
        elif command.reply_to is None:
            return  # a signal's start that failed is retried; only an answered failure is final
        else:
            outcome = StartOutcome(
                enrollment_id=enrollment_id, status="failed", reason=reply.error, error_type=reply.error_type
            )
            reply.error = reply.error_type = None  # the update answers the failure; it does not fail
        self._state.started[key] = outcome
        reply.result = outcome.model_dump(mode="json")

    def _keep_failure(self, command: Command, reply: Reply) -> None:
        """A signal-fed command: a success clears its earlier failure; a failure is retried later, doubling the
        wait, and after the last try kept as given up, the family flagged and the office told."""
        key = f"retry:{command.kind}:{workflow.info().run_id}:{self._state.commands_handled}"
        earlier = next((f for f in self._state.failed if f.command.payload == command.payload), None)
        if earlier is not None:
            self._state.failed.remove(earlier)
            self._unschedule(earlier.key)  # one retry at a time for one command
            key = earlier.key
        if reply.error is None:
            return
        failed = FailedCommand(
            key=key, command=command, error=reply.error, error_type=reply.error_type, failed_at=workflow.now()
        )
        self._state.failed.append(failed)
        if command.attempt < self._config.command_attempts:
            again = command.model_copy(update={"attempt": command.attempt + 1})
            due = workflow.now() + self._config.command_retry_after * (2 ** (command.attempt - 1))
            self._state.scheduled.append(ScheduledCommand(key=key, due=due, command=again))
            return
        failed.given_up = True
        workflow.logger.error("billing command %s given up after %d tries", command.kind, command.attempt)
        self._in_background(self._tell_office(failed))

    async def _tell_office(self, failed: FailedCommand) -> None:
        given_up = [
            f"- {f.command.kind} ({f.error_type or 'error'}): {f.error}" for f in self._state.failed if f.given_up
        ]
        email = SendEmail(
            template="billing_attention",
            dedup_key=f"billing-attention:{self.parent_id}:{failed.key}",
            to="office",
            context={"failed_commands": "\n".join(given_up), "workflow_id": workflow.info().workflow_id},
        )
        # Given up, the search attribute still shows the family.
        await self._email_bounded(email)

    def _in_background(self, work: Awaitable[None]) -> None:
        """Work beside the single writer (emails): it never holds the family's queue; continue-as-new waits for it."""

        async def run() -> None:
            await work

        task = asyncio.create_task(run())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _email_retry(self) -> RetryPolicy:
        return RetryPolicy(
            initial_interval=EMAIL_RETRY.initial_interval,
            maximum_interval=timedelta(seconds=30),
            maximum_attempts=self._config.email_attempts,
        )

    def _publish(self) -> None:
        """The state, in the office's words and without personal data, for the Temporal UI: its current details and
        the search attributes ``CedarBillingAttention`` and ``CedarBillingState``."""
        self._describe()
        if not workflow.patched(SEARCH_ATTRIBUTES_PATCH):
            return
        attention = "failed-commands" if any(f.given_up for f in self._state.failed) else "ok"
        state = "open-invoice" if self._state.open_invoices else "clear"
        if self._published != (attention, state):
            workflow.upsert_search_attributes([BILLING_ATTENTION.value_set(attention), BILLING_STATE.value_set(state)])
            self._published = (attention, state)

    def _describe(self) -> None:
        live = sum(1 for s in self._state.subscriptions.values() if s.status != "canceled")
        retrying = sum(1 for f in self._state.failed if not f.given_up)
        given_up = len(self._state.failed) - retrying
        details = f"{live} live subscription(s), {len(self._state.open_invoices)} open invoice(s)"
        if retrying or given_up:
            details += f", {retrying} command(s) to retry, {given_up} needing the office"
        workflow.set_current_details(details)

    async def _stripe(self, method: Any, arg: BaseModel, retry: RetryPolicy = STRIPE_RETRY) -> Any:
        return await workflow.execute_activity_method(
            method,
            arg,
            start_to_close_timeout=STRIPE_TIMEOUT,
            retry_policy=retry,
            task_queue=self._config.stripe_task_queue,
        )

    async def _db(self, method: Any, arg: BaseModel) -> Any:
        return await workflow.execute_local_activity_method(
            method, arg, start_to_close_timeout=DB_TIMEOUT, retry_policy=DB_RETRY
        )

    @property
    def parent_id(self) -> uuid.UUID:
        return self._parent_id

    async def _ensure_customer(self) -> tuple[uuid.UUID, str]:
        if self._state.billing_account_id is None or self._state.stripe_customer_id is None:
            ref = await self._stripe(StripeActivities.ensure_customer, EnsureCustomer(parent_id=self.parent_id))
            self._state.billing_account_id, self._state.stripe_customer_id = (
                ref.billing_account_id,
                ref.stripe_customer_id,
            )
        assert self._state.billing_account_id is not None
        assert self._state.stripe_customer_id is not None
        return self._state.billing_account_id, self._state.stripe_customer_id

    async def _start_student(self, started: StudentStarted) -> None:
        key = str(started.enrollment_id)
        if (key in self._state.started or key in self._state.subscriptions) and workflow.patched(COMMAND_SAFETY_PATCH):
            return  # started already (or refused): the outcome then is the answer, nothing starts twice
        account_id, customer_id = await self._ensure_customer()
        card: CardResult = await self._stripe(
            StripeActivities.attach_card,
            AttachCard(
                billing_account_id=account_id,
                stripe_customer_id=customer_id,
                payment_method_id=started.stripe_payment_method_id,
            ),
        )
        self._remember_card(card)
        quote: Quote = await self._db(
            BillingActivities.quote_subscription,
            QuoteRequest(
                billing_account_id=account_id,
                student_id=started.student_id,
                instrument=started.instrument,
                lesson_minutes=started.lesson_minutes,
                billing_interval=started.billing_interval,
            ),
        )
        await self._stripe(
            StripeActivities.ensure_plan,
            EnsurePlan(
                plan_id=quote.plan_id,
                instrument=started.instrument,
                lesson_minutes=started.lesson_minutes,
                interval=quote.interval,
                amount_minor=quote.amount_minor,
                currency=quote.currency,
            ),
        )
        anchor = None
        if workflow.patched(STRIPE_CYCLE_PATCH):
            cycle: CycleAnchor = await self._db(
                BillingActivities.cycle_anchor_of,
                CycleAnchorRequest(enrollment_id=started.enrollment_id, interval=quote.interval),
            )
            anchor = cycle.anchor
        sub: SubscriptionSnapshot = await self._stripe(
            StripeActivities.create_subscription,
            CreateSubscription(
                billing_account_id=account_id,
                stripe_customer_id=customer_id,
                enrollment_id=started.enrollment_id,
                student_id=started.student_id,
                plan_id=quote.plan_id,
                interval=quote.interval,
                amount_minor=quote.amount_minor,
                discount_percent=quote.discount_percent,
                currency=quote.currency,
                trial_end=trial_end_for(started.first_regular_lesson_at),
                billing_cycle_anchor=anchor,
            ),
        )
        self._state.subscriptions[str(started.enrollment_id)] = SubscriptionState(
            enrollment_id=started.enrollment_id,
            student_id=started.student_id,
            stripe_subscription_id=sub.id,
            status=sub.status,
            amount_minor=quote.amount_minor,
            discount_percent=quote.discount_percent,
            cycle=anchor is not None,
        )
        if quote.registration_fee_minor > 0 and started.registration_fee and workflow.patched(REGISTRATION_FEE_PATCH):
            await self._charge_registration_fee(started, quote)
        if workflow.patched(LESSON_PERIODS_PATCH):
            # Stripe ends the subscription by itself after the last lesson booked (a next semester moves it).
            plan = await self._lesson_plan(started.enrollment_id)
            if plan.follows_lessons and plan.last_lesson_ends_at is not None:
                end = ScheduleSubscription(stripe_subscription_id=sub.id, cancel_at=plan.last_lesson_ends_at)
                await self._schedule(end)
                if anchor is not None and workflow.patched(GAP_TRIAL_PATCH):
                    await self._plan_gap(self._state.subscriptions[str(started.enrollment_id)])

    async def _charge_registration_fee(self, started: StudentStarted, quote: Quote) -> None:
        """The school's fee, once per enrollment (a re-delivered start finds it in ``charges``): pending for the
        first lessons invoice (added after the subscription, so its trial's invoice does not take it), or paid now."""
        fee = ChargeRequest(
            request_id=registration_fee_request_id(started.enrollment_id),
            amount_minor=quote.registration_fee_minor,
            description=REGISTRATION_FEE_DESCRIPTION,
            kind="charge",
            when="now" if quote.registration_fee_when == "now" else "next_invoice",
        )
        await self._add_charge(fee)

    def _remember_card(self, card: CardResult) -> None:
        self._state.card_problem = (
            None
            if card.attached
            else PaymentFailure(attempt=0, failure_code=card.failure_code, decline_code=card.decline_code)
        )

    async def _stop_student(self, stopped: StudentStopped) -> None:
        sub = self._state.subscriptions.get(str(stopped.enrollment_id))
        self._unschedule(gap_key(stopped.enrollment_id))  # no pause to begin: billing ends after the last lesson
        until = stopped.last_lesson_ends_at
        # Without lessons booked there are no lesson periods to follow: the stop works as before.
        if (
            sub is not None
            and until is not None
            and workflow.patched(LESSON_PERIODS_PATCH)
            and (await self._lesson_plan(sub.enrollment_id)).follows_lessons
        ):
            await self._stop_after(sub, until)
            return
        if sub is None or sub.status == "canceled":
            return
        snap = await self._stripe(
            StripeActivities.cancel_subscription, CancelSubscription(stripe_subscription_id=sub.stripe_subscription_id)
        )
        sub.status = await self._db(BillingActivities.apply_subscription, snap)

    async def _lesson_plan(self, enrollment_id: uuid.UUID, until: datetime | None = None) -> LessonPlan:
        plan: LessonPlan = await self._db(
            BillingActivities.lesson_plan, LessonPlanRequest(enrollment_id=enrollment_id, until=until)
        )
        return plan

    async def _schedule(self, schedule: ScheduleSubscription) -> None:
        snap = await self._stripe(StripeActivities.schedule_subscription, schedule)
        self._set_subscription_status(snap.id, await self._db(BillingActivities.apply_subscription, snap))

    async def _cancel_now(self, sub: SubscriptionState) -> None:
        """Ended at once, without Stripe's time-based credit: the tuition rule gives back what is owed."""
        cancel = CancelSubscription(stripe_subscription_id=sub.stripe_subscription_id, immediately=True, prorate=False)
        snap = await self._stripe(StripeActivities.cancel_subscription, cancel)
        sub.status = await self._db(BillingActivities.apply_subscription, snap)

    async def _stop_after(self, sub: SubscriptionState, until: datetime) -> None:
        """Nothing is billed after ``until`` (the end of the last lesson that happens), and what was paid for
        lessons after it is given back once by the tuition rule."""
        if sub.status != "canceled":
            sub.lessons_until = until if sub.lessons_until is None else min(sub.lessons_until, until)
            if until <= workflow.now():
                await self._cancel_now(sub)
            else:
                await self._schedule(
                    ScheduleSubscription(stripe_subscription_id=sub.stripe_subscription_id, cancel_at=until),
                )
        await self._refund_unheld(sub, sub.lessons_until or until)

    async def _refund_unheld(self, sub: SubscriptionState, until: datetime) -> None:
        """Each paid period whose lessons after ``until`` will not happen: the difference by the rule, refunded
        from that period's payment through the ordinary refund path, once (request id from the enrollment)."""
        if not sub.billed:
            return
        plan = await self._lesson_plan(sub.enrollment_id, until)
        owed = {p.key: p.amount_minor for p in plan.periods}
        for billed in sorted(sub.billed.values(), key=lambda b: b.start):
            back = billed.amount_minor - owed.get(billed.key, 0)
            if back <= 0 or billed.key in sub.stop_refunds:
                continue
            payment_id = await self._db(
                BillingActivities.invoice_payment, InvoicePaymentRef(stripe_invoice_id=billed.stripe_invoice_id)
            )
            if payment_id is None:
                if sub.cycle:  # its invoice may still be a draft: it is brought to what the held lessons cost
                    await self._retarget(sub, billed, owed.get(billed.key, 0))
                continue  # never paid: nothing to give back
            result = await self._refund(
                RefundRequest(
                    request_id=stop_refund_request_id(sub.enrollment_id, billed.key),
                    payment_id=payment_id,
                    amount_minor=back,
                    reason=f"lessons of {billed.key} after the student stopped",
                    unearned=True,
                )
            )
            sub.stop_refunds[billed.key] = result.amount_minor

    async def _retarget(self, sub: SubscriptionState, billed: BilledPeriod, amount: int) -> None:
        _, customer_id = await self._ensure_customer()
        adjusted: InvoiceAdjusted = await self._stripe(
            StripeActivities.adjust_invoice,
            AdjustInvoice(
                stripe_invoice_id=billed.stripe_invoice_id,
                stripe_customer_id=customer_id,
                stripe_subscription_id=sub.stripe_subscription_id,
                period_key=billed.key,
                amount_minor=amount,
            ),
        )
        if adjusted.reached:
            billed.amount_minor = amount

    async def _lessons_booked(self, booked: LessonsBooked) -> None:
        """A returning student's next semester: the same subscription goes on, Stripe ends it after the new last
        lesson, and (once the gap has begun) bills nothing until the next semester's first lesson."""
        sub = self._state.subscriptions.get(str(booked.enrollment_id))
        if sub is None or sub.status == "canceled":
            workflow.logger.warning("lessons booked for an enrollment without a live subscription")
            return
        sub.lessons_until = None
        plan = await self._lesson_plan(booked.enrollment_id)
        now = workflow.now()
        # Lessons still to come before the next semester are billed first; the gap begins after them.
        in_gap = not any(p.end > now.date() and p.start < booked.first_lesson_starts_at.date() for p in plan.periods)
        # On Cedar's cycle a trial must end on a period's start: the gap is planned from the lessons instead.
        await self._schedule(
            ScheduleSubscription(
                stripe_subscription_id=sub.stripe_subscription_id,
                cancel_at=booked.last_lesson_ends_at,
                trial_end=booked.first_lesson_starts_at if in_gap and not sub.cycle else None,
            ),
        )
        if sub.cycle and workflow.patched(GAP_TRIAL_PATCH):
            await self._plan_gap(sub)

    def _unschedule(self, key: str) -> None:
        self._state.scheduled = [s for s in self._state.scheduled if s.key != key]

    async def _plan_gap(self, sub: SubscriptionState) -> None:
        """The next stretch of whole periods without lessons: begun (its last lesson has ended), Stripe is told a
        trial until the period holding the next lesson starts (no invoice in between, and its cycle restarts on
        that period's start); else a ``begin_gap`` command waits in the state for the current lesson period's last
        lesson to end (or the gap's, if sooner), when the lessons are read again."""
        key = gap_key(sub.enrollment_id)
        self._unschedule(key)
        after = workflow.now()
        while True:
            gap: LessonGap = await self._db(
                BillingActivities.lesson_gap_of,
                LessonGapRequest(enrollment_id=sub.enrollment_id, after=after, until=sub.lessons_until),
            )
            now = workflow.now()
            if gap.begins_at is not None and gap.resumes_at is not None and gap.begins_at <= now:
                await self._schedule(
                    ScheduleSubscription(stripe_subscription_id=sub.stripe_subscription_id, trial_end=gap.resumes_at)
                )
                after = gap.resumes_at
                continue
            # Looked at again after each lesson period's last lesson: a period emptied since (a closure) is seen.
            due = min((t for t in (gap.begins_at, gap.checks_at) if t is not None and t > now), default=None)
            if due is not None:
                payload = BeginGap(enrollment_id=sub.enrollment_id).model_dump(mode="json")
                begin = Command(kind="begin_gap", payload=payload)
                self._state.scheduled.append(ScheduledCommand(key=key, due=due, command=begin))
            return

    async def _begin_gap(self, begin: BeginGap) -> None:
        sub = self._state.subscriptions.get(str(begin.enrollment_id))
        if sub is not None and sub.status != "canceled":
            await self._plan_gap(sub)  # the lessons are read again: a gap moved or filled since is followed

    async def _on_event(self, event: StripeEventReceived) -> None:
        ref = EventRef(stripe_event_id=event.stripe_event_id)
        if await self._db(BillingActivities.event_status, ref) in ("processed", "ignored"):
            return  # a duplicate delivery: acted on already
        status, error = "processed", None
        try:
            if event.charge_id and event.type in REFUND_EVENTS and workflow.patched(MIRROR_REFUNDS_PATCH):
                await self._mirror_refunds(event.charge_id, event.invoice_id)
            elif event.invoice_id:
                if event.type in FOLLOWED_INVOICE_EVENTS and self._follows_stripe_cycle(event.invoice_id):
                    await self._follow_invoice(event.invoice_id)
                await self._sync_invoice(event.invoice_id)
            elif event.type.startswith("customer.subscription.") and event.object_id:
                snap = await self._stripe(
                    StripeActivities.fetch_subscription, SubscriptionRef(stripe_subscription_id=event.object_id)
                )
                self._set_subscription_status(snap.id, await self._db(BillingActivities.apply_subscription, snap))
            else:
                status = "ignored"
        except ActivityError as failure:
            status, error = "failed", str(failure.cause or failure)[:2000]
        await self._db(
            BillingActivities.mark_event,
            EventOutcome(stripe_event_id=event.stripe_event_id, status=status, error=error),
        )
        if status == "failed" and workflow.patched(COMMAND_SAFETY_PATCH):
            # Kept as a failed command: re-driven on billing's retry schedule, then surfaced.
            raise ApplicationError(f"event {event.stripe_event_id} ({event.type}) failed: {error}", type="EventFailed")

    async def _mirror_refunds(self, stripe_charge_id: str, stripe_invoice_id: str | None) -> None:
        """The charge's refunds as Stripe has them, into our payments and ledger (each refund once)."""
        if stripe_invoice_id:
            await self._sync_invoice(stripe_invoice_id)  # the payment is mirrored before its refunds
        refunds = await self._stripe(StripeActivities.list_refunds, ChargeRef(stripe_charge_id=stripe_charge_id))
        await self._db(
            BillingActivities.record_charge_refunds,
            ChargeRefunds(stripe_charge_id=stripe_charge_id, refunds=refunds),
        )

    def _set_subscription_status(self, stripe_subscription_id: str | None, status: str) -> None:
        for sub in self._state.subscriptions.values():
            if sub.stripe_subscription_id == stripe_subscription_id and status and sub.status != "canceled":
                sub.status = status

    async def _sync_invoice(self, stripe_invoice_id: str, failure: PaymentFailure | None = None) -> InvoiceApplied:
        """Re-read the invoice from Stripe, mirror it, and tell the family and dunning what newly happened."""
        snap = await self._stripe(StripeActivities.fetch_invoice, InvoiceRef(stripe_invoice_id=stripe_invoice_id))
        if failure is None and snap.confirmation_needed:
            # Stripe's own attempt waits for the parent's bank (invoice.payment_action_required): no failed charge
            # tells of it, so the attempt is reported here; apply_invoice counts it once, by its number.
            failure = PaymentFailure(
                attempt=max(snap.attempt_count, 1),
                failure_code=AUTHENTICATION_REQUIRED,
                confirm_online=snap.has_hosted_page or bool(snap.hosted_invoice_url),
            )
        applied: InvoiceApplied = await self._db(
            BillingActivities.apply_invoice, ApplyInvoice(invoice=snap, failure=failure)
        )
        if applied.invoice_id is None:
            return applied
        if applied.status in ("open", "past_due"):
            self._state.open_invoices[stripe_invoice_id] = InvoiceState(
                stripe_invoice_id=stripe_invoice_id,
                status=applied.status,
                amount_due_minor=applied.amount_due_minor,
                amount_paid_minor=applied.amount_paid_minor,
                attempts=applied.attempt_count,
            )
        else:
            self._state.open_invoices.pop(stripe_invoice_id, None)
        if applied.new_failure is not None:
            self._set_subscription_status(snap.subscription_id, "past_due")
            await self._tell_failed(applied, stripe_invoice_id, applied.new_failure)
        if applied.newly_paid:
            self._set_subscription_status(snap.subscription_id, "active")
            if applied.payment_id is not None:
                await self._send_receipt(applied, snap.currency)
            await self._tell_paid(applied, stripe_invoice_id)
        return applied

    async def _tell_failed(self, applied: InvoiceApplied, stripe_invoice_id: str, failure: PaymentFailure) -> None:
        problem = self._state.card_problem
        if failure.decline_code is None and problem is not None:  # no card on file: report why it was refused
            failure = failure.model_copy(update={"decline_code": problem.decline_code})
        assert applied.invoice_id is not None
        message = InvoiceFailed(
            parent_id=self.parent_id,
            invoice_id=applied.invoice_id,
            stripe_invoice_id=stripe_invoice_id,
            amount_due_minor=applied.amount_due_minor - applied.amount_paid_minor,
            failed_at=applied.first_failed_at or workflow.now(),
            attempt=failure.attempt,
            decline_code=failure.decline_code,
            failure_code=failure.failure_code,
            outcome_unknown=failure.outcome_unknown,
            confirm_online=failure.confirm_online or bool(failure.confirm_url),
        )
        await self._notify(SIGNAL_INVOICE_FAILED, message)

    async def _tell_paid(self, applied: InvoiceApplied, stripe_invoice_id: str) -> None:
        assert applied.invoice_id is not None
        message = InvoicePaid(
            parent_id=self.parent_id,
            invoice_id=applied.invoice_id,
            stripe_invoice_id=stripe_invoice_id,
            paid_at=applied.paid_at or workflow.now(),
        )
        await self._notify(SIGNAL_INVOICE_PAID, message)

    async def _notify(self, signal: str, message: BaseModel) -> None:
        await self._db(
            BillingActivities.notify_dunning,
            NotifyDunning(parent_id=self.parent_id, signal=signal, payload=message.model_dump(mode="json")),
        )

    async def _send_receipt(self, applied: InvoiceApplied, currency: str) -> None:
        assert applied.payment_id is not None
        email = SendEmail(
            template="billing_receipt",
            dedup_key=f"receipt:{applied.payment_id}",
            to="parent",
            parent_id=self.parent_id,
            context={
                "amount": format_money(applied.amount_paid_minor, currency),
                "payment_reference": str(applied.payment_id)[:8].upper(),
                "paid_on": (applied.paid_at or workflow.now()).date().isoformat(),
            },
        )
        mark = SendReceipt(parent_id=self.parent_id, payment_id=applied.payment_id)
        if workflow.patched(BOUNDED_EMAIL_PATCH):
            self._in_background(self._send_bounded(email, mark))
            return
        await workflow.execute_activity_method(
            EmailActivities.send_email, email, start_to_close_timeout=timedelta(seconds=30), retry_policy=EMAIL_RETRY
        )
        await self._db(BillingActivities.mark_receipt_sent, mark)

    async def _send_bounded(self, email: SendEmail, mark: SendReceipt) -> None:
        """A receipt beside the writer, with bounded tries: given up, it is logged and the payment stays unmarked
        (the family's page still lists the payment)."""
        if await self._email_bounded(email):
            await self._db(BillingActivities.mark_receipt_sent, mark)

    async def _email_bounded(self, email: SendEmail) -> bool:
        """Sends ``email`` with bounded tries; False (logged) once they are spent."""
        try:
            await workflow.execute_activity_method(
                EmailActivities.send_email,
                email,
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=self._email_retry(),
            )
        except ActivityError as error:
            workflow.logger.error("email %s not sent: %s", email.dedup_key, error.cause)
            return False
        return True

    async def _pay(self, stripe_invoice_id: str, attempt: int) -> InvoiceApplied:
        try:
            outcome = await self._stripe(
                StripeActivities.pay_invoice, PayInvoice(stripe_invoice_id=stripe_invoice_id, attempt=attempt)
            )
        except ActivityError:
            # Stripe's answer never came back: dunning has billing re-check the invoice, never charge blindly.
            unknown = PaymentFailure(attempt=attempt, failure_code="outcome_unknown", outcome_unknown=True)
            return await self._sync_invoice(stripe_invoice_id, unknown)
        return await self._sync_invoice(stripe_invoice_id, outcome.failure if outcome.status == "failed" else None)

    async def _retry(self, retry: RetryInvoice) -> None:
        applied = await self._sync_invoice(retry.stripe_invoice_id)  # re-check Stripe before any charge
        if applied.invoice_id is None or applied.newly_paid or applied.new_failure is not None:
            return
        if applied.status == "paid":
            await self._tell_paid(applied, retry.stripe_invoice_id)  # paid earlier: dunning may not know yet
        elif applied.status in ("open", "past_due"):
            if retry.check_only:
                still = PaymentFailure(attempt=applied.attempt_count)
                await self._tell_failed(applied, retry.stripe_invoice_id, still)
            else:
                await self._pay(retry.stripe_invoice_id, max(retry.attempt, applied.attempt_count + 1))

    async def _write_off(self, order: WriteOff) -> None:
        for stripe_invoice_id in order.stripe_invoice_ids:
            await self._stripe(StripeActivities.close_invoice, InvoiceRef(stripe_invoice_id=stripe_invoice_id))
            await self._db(
                BillingActivities.write_off_invoice,
                WriteOffInvoice(stripe_invoice_id=stripe_invoice_id, reason=order.reason),
            )
            self._state.open_invoices.pop(stripe_invoice_id, None)
        if not order.end_subscriptions:
            return
        for sub in self._state.subscriptions.values():
            if sub.status != "canceled":
                snap = await self._stripe(
                    StripeActivities.cancel_subscription,
                    CancelSubscription(stripe_subscription_id=sub.stripe_subscription_id, immediately=True),
                )
                sub.status = await self._db(BillingActivities.apply_subscription, snap)

    async def _change_card(self, change: CardChange) -> CardResult:
        account_id, customer_id = await self._ensure_customer()
        card: CardResult = await self._stripe(
            StripeActivities.attach_card,
            AttachCard(
                billing_account_id=account_id,
                stripe_customer_id=customer_id,
                payment_method_id=change.stripe_payment_method_id,
            ),
        )
        if not card.attached:
            return card
        self._remember_card(card)
        await self._notify(
            SIGNAL_CARD_UPDATED,
            CardUpdated(parent_id=self.parent_id, stripe_payment_method_id=change.stripe_payment_method_id),
        )
        for invoice in [i for i in self._state.open_invoices.values() if i.status == "past_due"]:
            await self._pay(invoice.stripe_invoice_id, invoice.attempts + 1)  # a new card: retry at once
        return card

    async def _refund(self, request: RefundRequest) -> RefundResult:
        account_id, _ = await self._ensure_customer()
        create = await self._db(
            BillingActivities.prepare_refund,
            PrepareRefund(
                request_id=request.request_id,
                billing_account_id=account_id,
                payment_id=request.payment_id,
                amount_minor=request.amount_minor,
            ),
        )
        refund = await self._stripe(StripeActivities.refund, create)
        refund_id = await self._db(
            BillingActivities.record_refund,
            RecordRefund(
                payment_id=request.payment_id, refund=refund, reason=request.reason, unearned=request.unearned
            ),
        )
        return RefundResult(refund_id=refund_id, stripe_refund_id=refund.id, amount_minor=refund.amount_minor)

    async def _renew(self, request: RenewRequest) -> RenewResult:
        _, customer_id = await self._ensure_customer()
        sub = next(
            (
                s
                for s in self._state.subscriptions.values()
                if s.stripe_subscription_id == request.stripe_subscription_id
            ),
            None,
        )
        if sub is None or sub.status == "canceled":
            raise ApplicationError("no live subscription to renew", type="NotFound")
        if sub.cycle:
            return await self._renew_cycle(sub, customer_id)
        if workflow.patched(LESSON_PERIODS_PATCH):
            plan = await self._lesson_plan(sub.enrollment_id, sub.lessons_until)
            if plan.follows_lessons:
                return await self._renew_lesson_period(sub, customer_id, plan)
        period = sub.renewals + 1
        invoice_id = await self._stripe(
            StripeActivities.create_renewal,
            CreateRenewal(
                stripe_customer_id=customer_id, stripe_subscription_id=sub.stripe_subscription_id, period=period
            ),
        )
        sub.renewals = period
        applied = await self._pay(invoice_id, attempt=1)
        return RenewResult(stripe_invoice_id=invoice_id, period=period, status=applied.status)

    async def _renew_cycle(self, sub: SubscriptionState, customer_id: str) -> RenewResult:
        """Development's stand-in for Stripe's clock on Cedar's cycle: the next period's invoice created as a draft,
        as Stripe creates it, brought to the rule's amount by the same handler as Stripe's ``invoice.created``, then
        paid. A period without lessons gets a zero invoice, as in production; after the last one, nothing to bill."""
        last = max(sub.billed.values(), key=lambda b: b.start, default=None)
        at = last.ends_at if last is not None else None
        if at is None:
            at = (await self._lesson_plan(sub.enrollment_id, sub.lessons_until)).first_lesson_starts_at
        period: InvoicePeriod | None = None
        if at is not None:
            period = await self._db(
                BillingActivities.invoice_period,
                InvoicePeriodRequest(enrollment_id=sub.enrollment_id, at=at, until=sub.lessons_until),
            )
            if period.lessons == 0 and period.next_starts_at is not None and workflow.patched(GAP_TRIAL_PATCH):
                # No invoice for periods without lessons (Stripe's trial covers them): the next one holding lessons.
                at = period.next_starts_at
                period = await self._db(
                    BillingActivities.invoice_period,
                    InvoicePeriodRequest(enrollment_id=sub.enrollment_id, at=at, until=sub.lessons_until),
                )
        if at is None or period is None or not period.later_lessons:
            await self._cancel_now(sub)
            raise ApplicationError(
                "nothing left to bill: every period holding lessons is billed; the subscription is ended",
                type="Conflict",
            )
        number = sub.renewals + 1
        invoice_id = await self._stripe(
            StripeActivities.create_renewal,
            CreateRenewal(
                stripe_customer_id=customer_id,
                stripe_subscription_id=sub.stripe_subscription_id,
                period=number,
                period_start=at,
            ),
        )
        sub.renewals = number
        billed = await self._follow_invoice(invoice_id)
        applied = await self._pay(invoice_id, attempt=1)
        return RenewResult(
            stripe_invoice_id=invoice_id,
            period=number,
            status=applied.status,
            period_key=billed.key if billed else period.key,
            amount_minor=billed.amount_minor if billed else applied.amount_due_minor,
        )

    def _follows_stripe_cycle(self, stripe_invoice_id: str) -> bool:
        """Some subscription is on Cedar's cycle and this invoice is not a period already followed."""
        cycle = [s for s in self._state.subscriptions.values() if s.cycle]
        return bool(cycle) and not any(
            b.stripe_invoice_id == stripe_invoice_id for s in cycle for b in s.billed.values()
        )

    async def _follow_invoice(self, stripe_invoice_id: str) -> BilledPeriod | None:
        """A period invoice of a subscription on Cedar's cycle (Stripe's own at ``invoice.created``, or a development
        renewal's): while a draft, brought to its lesson period's amount by the tuition rule (zero for a period
        without lessons, or one billed already) with one adjustment item; recorded as the period billed, so a stop
        gives back its unheld lessons. An invoice finalized before billing saw it is recorded at what it billed."""
        for followed in self._state.subscriptions.values():
            for billed in followed.billed.values():
                if billed.stripe_invoice_id == stripe_invoice_id:
                    return billed
        snap: InvoiceSnapshot = await self._stripe(
            StripeActivities.fetch_invoice, InvoiceRef(stripe_invoice_id=stripe_invoice_id)
        )
        sub = next(
            (
                s
                for s in self._state.subscriptions.values()
                if s.cycle and s.stripe_subscription_id == snap.subscription_id
            ),
            None,
        )
        if sub is None or snap.cycle_start is None:
            return None
        period: InvoicePeriod = await self._db(
            BillingActivities.invoice_period,
            InvoicePeriodRequest(enrollment_id=sub.enrollment_id, at=snap.cycle_start, until=sub.lessons_until),
        )
        if not period.follows_lessons:
            return None
        taken = period.key in sub.billed
        amount = 0 if taken else period.amount_minor
        if snap.status == "draft":
            _, customer_id = await self._ensure_customer()
            adjusted: InvoiceAdjusted = await self._stripe(
                StripeActivities.adjust_invoice,
                AdjustInvoice(
                    stripe_invoice_id=stripe_invoice_id,
                    stripe_customer_id=customer_id,
                    stripe_subscription_id=sub.stripe_subscription_id,
                    period_key=period.key,
                    amount_minor=amount,
                ),
            )
            if not adjusted.reached:
                snap = await self._stripe(
                    StripeActivities.fetch_invoice, InvoiceRef(stripe_invoice_id=stripe_invoice_id)
                )
                amount = _period_part(snap)  # finalized meanwhile: what Stripe billed
        else:
            amount = _period_part(snap)
        if taken or (snap.status != "draft" and amount <= 0):
            return None  # a second invoice for a billed period, or the trial's zero invoice: nothing to record
        billed = BilledPeriod(
            key=period.key,
            start=period.start,
            amount_minor=amount,
            stripe_invoice_id=stripe_invoice_id,
            ends_at=period.ends_at,
        )
        sub.billed[period.key] = billed
        return billed

    async def _renew_lesson_period(self, sub: SubscriptionState, customer_id: str, plan: LessonPlan) -> RenewResult:
        """The next period holding lessons, billed at the rule's amount (the plan's price plus an adjustment item
        made once before the invoice); periods without lessons are skipped; after the last one, nothing to bill."""
        last_start = max((b.start for b in sub.billed.values()), default=None)
        upcoming = [p for p in plan.periods if p.key not in sub.billed and (last_start is None or p.start > last_start)]
        if not upcoming:
            await self._cancel_now(sub)
            raise ApplicationError(
                "nothing left to bill: every period holding lessons is billed; the subscription is ended",
                type="Conflict",
            )
        target, period = upcoming[0], sub.renewals + 1
        adjustment = target.amount_minor - sub.amount_minor
        if adjustment:
            await self._stripe(
                StripeActivities.add_adjustment,
                CreateAdjustment(
                    stripe_customer_id=customer_id,
                    stripe_subscription_id=sub.stripe_subscription_id,
                    period=period,
                    period_key=target.key,
                    amount_minor=adjustment,
                ),
            )
        invoice_id = await self._stripe(
            StripeActivities.create_renewal,
            CreateRenewal(
                stripe_customer_id=customer_id, stripe_subscription_id=sub.stripe_subscription_id, period=period
            ),
        )
        sub.renewals = period
        sub.billed[target.key] = BilledPeriod(
            key=target.key, start=target.start, amount_minor=target.amount_minor, stripe_invoice_id=invoice_id
        )
        applied = await self._pay(invoice_id, attempt=1)
        return RenewResult(
            stripe_invoice_id=invoice_id,
            period=period,
            status=applied.status,
            period_key=target.key,
            amount_minor=target.amount_minor,
        )

    async def _add_charge(self, request: ChargeRequest) -> ChargeResult:
        """A one-off charge or credit as a Stripe invoice item: pending until the next invoice, or (a charge,
        "now") invoiced and paid at once, mirrored, receipted and booked like any invoice."""
        key = str(request.request_id)
        done = self._state.charges.get(key)
        if done is not None:  # the same request queued twice
            return done
        _, customer_id = await self._ensure_customer()
        amount = request.amount_minor if request.kind == "charge" else -request.amount_minor
        item_id: str = await self._stripe(
            StripeActivities.add_invoice_item,
            CreateInvoiceItem(
                stripe_customer_id=customer_id,
                request_id=request.request_id,
                amount_minor=amount,
                description=request.description,
            ),
        )
        result = ChargeResult(request_id=request.request_id, stripe_invoice_item_id=item_id, amount_minor=amount)
        if request.when == "now":
            invoice_id: str = await self._stripe(
                StripeActivities.create_charge_invoice,
                ChargeInvoice(stripe_customer_id=customer_id, request_id=request.request_id),
            )
            applied = await self._pay(invoice_id, attempt=1)
            result.stripe_invoice_id, result.status = invoice_id, applied.status
        self._state.charges[key] = result
        return result
