"""``/api/v1/families/{parent_id}/billing-setup``: billing for families moved in by ``cedar import``.

The office invites a family (one email per parent, ``POST``); the family or the office reads where it stands
(``GET``); the parent gives the card (``PUT …/card``), which hands each imported enrollment to the family's billing
workflow once (``api/services/billing_setup.py``). The page ``/billing/setup`` calls the same service.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends

from api.access import ROUTE_ACCESS
from api.deps import ContextDep, IdentityDep, SessionDep, SettingsDep, TemporalDep
from api.principal import AdminPrincipal, Principal, require_roles
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.billing_setup import AwaitingOut, BillingSetupCard, BillingSetupOut, HandedOut, InviteOut
from api.services import billing_setup as service
from models import Role

router = IndexedRouter(prefix="/api/v1/families", tags=["billing setup"], dependencies=[Depends(bind_request_id)])
FamilyPrincipal = Annotated[Principal, Depends(require_roles(Role.admin, Role.parent))]
ParentPrincipal = Annotated[Principal, Depends(require_roles(Role.parent))]
ROUTE_ACCESS.update(
    {
        ("GET", "/api/v1/families/{parent_id}/billing-setup"): frozenset({"admin", "parent"}),
        ("POST", "/api/v1/families/{parent_id}/billing-setup"): frozenset({"admin"}),
        ("PUT", "/api/v1/families/{parent_id}/billing-setup/card"): frozenset({"parent"}),
    }
)


def _awaiting(item: service.Awaiting) -> AwaitingOut:
    enrollment = item.enrollment
    return AwaitingOut(
        enrollment_id=enrollment.id,
        student_id=enrollment.student_id,
        instrument=enrollment.instrument,
        billing_interval=enrollment.billing_interval,
        billing_from=item.billing_from,
    )


@router.get("/{parent_id}/billing-setup", response_model=BillingSetupOut, summary="An imported family's billing set-up")
async def setup_status(
    parent_id: uuid.UUID, session: SessionDep, settings: SettingsDep, principal: FamilyPrincipal
) -> BillingSetupOut:
    found = await service.status(session, settings, principal, parent_id)
    return BillingSetupOut(
        parent_id=parent_id,
        imported_enrollments=found.imported,
        done=found.done,
        invited_at=found.invited_at,
        awaiting=[_awaiting(item) for item in found.awaiting],
    )


@router.post("/{parent_id}/billing-setup", response_model=InviteOut, summary="Invite a family to set up billing")
async def invite(
    parent_id: uuid.UUID, session: SessionDep, context: ContextDep, identity: IdentityDep, principal: AdminPrincipal
) -> InviteOut:
    """One email per parent, however often asked (the second answers ``already_sent``); 409 when none of the
    family's imported enrollments waits for a card."""
    sent = await service.invite(
        session, context.sessions, context.settings, context.mailer, identity, principal, parent_id
    )
    return InviteOut(
        parent_id=parent_id,
        communication_id=sent.communication_id,
        already_sent=sent.already_sent,
        suppressed=sent.suppressed,
    )


@router.put("/{parent_id}/billing-setup/card", response_model=HandedOut, summary="Give the card: billing starts")
async def give_card(
    parent_id: uuid.UUID,
    body: BillingSetupCard,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    principal: ParentPrincipal,
) -> HandedOut:
    """The family's own card (a PaymentMethod from Stripe.js): each imported enrollment waiting for it is handed to
    billing once; asked again, nothing new starts."""
    handed = await service.give_card(session, temporal, settings, principal, parent_id, body.payment_method_id)
    return HandedOut(
        parent_id=parent_id,
        started=[_awaiting(item) for item in handed.started],
        nothing_to_bill=[e.id for e in handed.nothing_to_bill],
    )
