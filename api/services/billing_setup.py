"""Billing for families moved in by ``cedar import`` (docs/import.md): the office invites a family (one email per
parent, with a sign-in link and the set-up page's address), and the parent gives a card on ``/billing/setup``.

The card hands each of the family's imported active enrollments to the family's billing workflow exactly as an
enrollment workflow does when a demo goes well (``BillingHandoffActivities.start_billing``, the StudentStarted
signal with the card), once per enrollment: the card recorded on the enrollment, under a row lock, is the mark, so
a second submit (or two at once) starts nothing new. Billing starts at the next lesson period that holds a lesson
(``domain.billing_setup``): nothing before the card is billed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import stripe
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.email import EmailActivities
from activities.enrollment import BillingHandoffActivities
from api.errors import CedarError, Conflict, NotFound
from api.principal import Principal
from api.repositories import billing_setup as repository
from api.repositories import scopes
from api.repositories.audit import audit_write
from api.repositories.base import get_one
from api.temporal_calls import bounded
from core.contracts.billing import StudentStarted
from core.contracts.email import EmailResult, SendEmail
from core.db import SessionFactory
from core.identity import IdentityProvider
from core.mail import Mailer
from core.page_links import BILLING_SETUP_PATH
from core.settings import Settings
from core.stripe import create_stripe_client
from domain.billing_setup import billing_starts_at
from models import Enrollment, Parent

INVITE_TEMPLATE = "billing_setup_invite"
_BILLING = "the family's billing"


@dataclass(frozen=True)
class Awaiting:
    enrollment: Enrollment
    billing_from: datetime | None  # None: its lessons left all fall in the period in progress (nothing billed)


@dataclass(frozen=True)
class SetupStatus:
    parent_id: uuid.UUID
    imported: int  # enrollments the import made for the family
    awaiting: list[Awaiting]
    invited_at: datetime | None

    @property
    def done(self) -> bool:
        return self.imported > 0 and not self.awaiting


@dataclass(frozen=True)
class Handed:
    """What one card submit set going: the enrollments handed to billing (with when billing starts) and those
    with nothing left to bill; both empty when everything was handed over before."""

    started: list[Awaiting] = field(default_factory=list)
    nothing_to_bill: list[Enrollment] = field(default_factory=list)


async def _family(session: AsyncSession, principal: Principal, parent_id: uuid.UUID) -> Parent:
    """The family (another family's is a 404, as everywhere)."""
    parent: Parent = await get_one(session, scopes.parents(principal).where(col(Parent.id) == parent_id), "parent")
    return parent


async def _awaiting(session: AsyncSession, settings: Settings, rows: list[Enrollment], now: datetime) -> list[Awaiting]:
    result = []
    for enrollment in rows:
        starts = await repository.held_lesson_starts(session, enrollment.id)
        billing_from = billing_starts_at(starts, now, enrollment.billing_interval, settings.timezone)
        result.append(Awaiting(enrollment, billing_from))
    return result


async def status(session: AsyncSession, settings: Settings, principal: Principal, parent_id: uuid.UUID) -> SetupStatus:
    await _family(session, principal, parent_id)
    rows = await repository.awaiting_card(session, parent_id)
    invited = await repository.invited(session, [parent_id])
    return SetupStatus(
        parent_id=parent_id,
        imported=await repository.imported_enrollments(session, parent_id),
        awaiting=await _awaiting(session, settings, rows, datetime.now(UTC)),
        invited_at=invited.get(parent_id),
    )


async def families_awaiting(session: AsyncSession) -> list[tuple[Parent, int, datetime | None]]:
    """Every family with imported enrollments waiting for a card: the parent, how many, and when invited."""
    counts: dict[uuid.UUID, int] = {}
    for enrollment in await repository.awaiting_card(session):
        assert enrollment.parent_id is not None  # the query keeps only enrollments with their family
        counts[enrollment.parent_id] = counts.get(enrollment.parent_id, 0) + 1
    invited = await repository.invited(session, list(counts))
    return [(p, counts[p.id], invited.get(p.id)) for p in await repository.parents(session, list(counts))]


async def send_invite(
    session: AsyncSession,
    sessions: SessionFactory,
    settings: Settings,
    mailer: Mailer,
    identity: IdentityProvider,
    parent_id: uuid.UUID,
) -> EmailResult | None:
    """The invitation email, once per parent (the communications row's dedup key); None when the family has no
    imported enrollment waiting for a card. Used by the office's action and by ``cedar import --invite-billing``."""
    if not await repository.awaiting_card(session, parent_id):
        return None
    email = SendEmail(
        template=INVITE_TEMPLATE,
        dedup_key=repository.invite_key(parent_id),
        to="parent",
        parent_id=parent_id,
        include_login=True,
        context={"setup_url": settings.public_base_url + BILLING_SETUP_PATH},
    )
    try:
        return await EmailActivities(settings, sessions, mailer, identity).send_email(email)
    except ApplicationError as failed:  # SMTP down: recorded on the row; asking again sends it
        raise CedarError(503, "email_unavailable", "the invitation could not be sent; try again shortly") from failed


async def invite(
    session: AsyncSession,
    sessions: SessionFactory,
    settings: Settings,
    mailer: Mailer,
    identity: IdentityProvider,
    principal: Principal,
    parent_id: uuid.UUID,
) -> EmailResult:
    """The office's invitation (a 409 when nothing waits for a card); audited when it goes out."""
    await _family(session, principal, parent_id)
    sent = await send_invite(session, sessions, settings, mailer, identity, parent_id)
    if sent is None:
        raise Conflict("this family has no imported lessons waiting for billing")
    if not sent.already_sent:
        after = {"communication_id": str(sent.communication_id), "suppressed": sent.suppressed}
        await audit_write(session, principal, "invite", "billing_setup", parent_id, after=after)
    return sent


async def _check_card(settings: Settings, payment_method_id: str) -> None:
    """The payment method exists in Stripe and is a card (the bank's own check happened in the browser)."""
    try:
        method = await create_stripe_client(settings).v1.payment_methods.retrieve_async(payment_method_id)
    except stripe.InvalidRequestError as refused:
        raise CedarError(
            422, "card_rejected", "the card was not accepted", {"payment_method_id": "unknown payment method"}
        ) from refused
    except stripe.StripeError as error:
        raise CedarError(503, "stripe_unavailable", "the card service is unavailable; try again in a moment") from error
    if method.to_dict().get("type") != "card":
        raise CedarError(422, "card_rejected", "the card was not accepted", {"payment_method_id": "not a card"})


async def give_card(
    session: AsyncSession,
    temporal: Client,
    settings: Settings,
    principal: Principal,
    parent_id: uuid.UUID,
    payment_method_id: str,
) -> Handed:
    """The parent's card: each imported enrollment waiting for it goes to the family's billing workflow once."""
    if principal.parent_id != parent_id:
        raise NotFound("parent")  # the family's own act: another family (or the office) gets nothing
    await _family(session, principal, parent_id)
    rows = await repository.awaiting_card(session, parent_id, lock=True)
    if not rows:
        return Handed()
    await _check_card(settings, payment_method_id)
    handoff = BillingHandoffActivities(settings, temporal)
    handed = Handed()
    # Billing has them already (a submit that failed after handing them over): they are only marked.
    billed = await repository.subscribed(session, [e.id for e in rows])
    for item in await _awaiting(session, settings, rows, datetime.now(UTC)):
        enrollment = item.enrollment
        if enrollment.id in billed:
            handed.started.append(item)
        elif item.billing_from is not None:
            assert enrollment.student_id is not None
            assert enrollment.teacher_id is not None
            started = StudentStarted(
                enrollment_id=enrollment.id,
                parent_id=parent_id,
                student_id=enrollment.student_id,
                teacher_id=enrollment.teacher_id,
                instrument=enrollment.instrument,
                lesson_minutes=enrollment.lesson_minutes,
                billing_interval=enrollment.billing_interval,
                stripe_payment_method_id=payment_method_id,
                # The trial ends there: Stripe's first invoice is the next lesson period's.
                first_regular_lesson_at=item.billing_from,
                # The family registered at the school before Cedar.
                registration_fee=False,
            )
            async with bounded(settings.temporal_query_timeout, _BILLING):
                await handoff.start_billing(started)
            handed.started.append(item)
        else:
            handed.nothing_to_bill.append(enrollment)
        enrollment.stripe_payment_method_id = payment_method_id  # the mark: handed over once
        after = {
            "billing_from": item.billing_from.isoformat() if item.billing_from else None,
            "stripe_payment_method_id": payment_method_id,
        }
        await audit_write(session, principal, "billing_setup", "enrollment", enrollment.id, after=after)
    await session.flush()
    return handed


async def student_names(session: AsyncSession, awaiting: list[Awaiting]) -> dict[uuid.UUID, str]:
    """The first names of the children whose lessons wait (for the set-up page)."""
    ids = [a.enrollment.student_id for a in awaiting if a.enrollment.student_id is not None]
    return await repository.student_names(session, ids)
