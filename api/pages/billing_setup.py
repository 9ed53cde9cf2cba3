"""Billing set-up for families moved in by ``cedar import``: the parent's ``/billing/setup`` (the card form; the
invitation email links here, through the sign-in form) and the office's ``/office/billing-setup`` (the imported
families without billing, each with an Invite button).

Each calls the service its JSON twin calls (``api/routes/billing_setup.py``): ``give_card`` behind
``PUT /api/v1/families/{id}/billing-setup/card`` and ``invite`` behind ``POST /api/v1/families/{id}/billing-setup``,
with the same roles, row-level rules and audit rows.
"""

from __future__ import annotations

import uuid

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.access import ROUTE_ACCESS
from api.deps import ContextDep, IdentityDep, SessionDep, SettingsDep, TemporalDep
from api.errors import CedarError
from api.pages.family import card_csp
from api.pages.office import AdminUser  # also: the office's navigation is set before this module adds to it
from api.pages.web import NAV, NOTICES, ParentUser, page_router, redirect, render, sentence
from api.principal import Principal
from api.schemas.enrollment import PaymentMethodId
from api.services import billing as billing_service
from api.services import billing_setup as service
from core.page_links import BILLING_SETUP_PATH
from core.settings import Settings
from domain.local_time import format_local
from models import Role

router = page_router()
OFFICE_PATH = "/office/billing-setup"
_PM = TypeAdapter(PaymentMethodId)

ROUTE_ACCESS.update(
    {
        ("GET", BILLING_SETUP_PATH): frozenset({"parent"}),
        ("POST", BILLING_SETUP_PATH): frozenset({"parent"}),
        ("GET", OFFICE_PATH): frozenset({"admin"}),
        ("POST", OFFICE_PATH + "/{parent_id}/invite"): frozenset({"admin"}),
    }
)
if (OFFICE_PATH, "Billing set-up") not in NAV[Role.admin]:
    NAV[Role.admin].append((OFFICE_PATH, "Billing set-up"))
NOTICES.update(
    {
        "billing_set_up": "Your card is saved and billing is set up: the next lesson period is billed to it.",
        "billing_invited": "The family is invited: the parent has the email with the set-up link.",
        "billing_invited_before": "The family was invited before: no second email was sent.",
    }
)


def _parent_id(user: Principal) -> uuid.UUID:
    assert user.parent_id is not None  # a parent's account always has its family row
    return user.parent_id


async def _setup_page(
    request: Request, session: AsyncSession, settings: Settings, user: Principal, problem: str | None = None
) -> HTMLResponse:
    found = await service.status(session, settings, user, _parent_id(user))
    if not found.awaiting:
        message = (
            "Billing is set up: your lessons are billed to the card you gave."
            if found.done
            else "There is nothing to set up here: billing starts with the card you give when you enroll."
        )
        return await render(
            request, "message.html", title="Billing", message=message, link=("/family", "Back to your family's page")
        )
    names = await service.student_names(session, found.awaiting)
    secret = await billing_service.card_setup(session, settings, user, None)
    awaiting = [
        {
            "student": names.get(item.enrollment.student_id, "") if item.enrollment.student_id else "",
            "instrument": item.enrollment.instrument,
            "lesson_minutes": item.enrollment.lesson_minutes,
            "interval": item.enrollment.billing_interval,
            "billing_from": format_local(item.billing_from, settings.timezone) if item.billing_from else None,
        }
        for item in found.awaiting
    ]
    page = await render(
        request,
        "billing_setup.html",
        422 if problem else 200,
        title="Set up billing",
        action=BILLING_SETUP_PATH,
        submit_label="Save this card and start billing",
        problem=problem,
        awaiting=awaiting,
        stripe_key=settings.stripe_publishable_key,
        client_secret=secret or "",
        scripts=[settings.stripe_js_url, "/static/card.js"] if secret else [],
    )
    if secret:
        page.headers["Content-Security-Policy"] = card_csp(settings)
    return page


@router.get(BILLING_SETUP_PATH)
async def setup_page(request: Request, user: ParentUser, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    return await _setup_page(request, session, settings, user)


@router.post(BILLING_SETUP_PATH)
async def give_card(
    request: Request, user: ParentUser, session: SessionDep, settings: SettingsDep, temporal: TemporalDep
) -> Response:
    """The same service as ``PUT /api/v1/families/{id}/billing-setup/card``: a card not accepted shows the form
    again with the reason; a second submit starts nothing new."""
    sent = (await request.form()).get("payment_method_id")
    try:
        payment_method_id = _PM.validate_python(sent if isinstance(sent, str) else "")
        await service.give_card(session, temporal, settings, user, _parent_id(user), payment_method_id)
    except ValidationError:
        return await _setup_page(request, session, settings, user, "The card could not be read. Try again.")
    except CedarError as refused:
        if refused.status_code != 422:
            raise
        await session.rollback()
        return await _setup_page(request, session, settings, user, sentence(refused.detail) + " Try another card.")
    return redirect("/family?notice=billing_set_up")


@router.get(OFFICE_PATH)
async def office_page(request: Request, user: AdminUser, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    families = [
        {
            "id": parent.id,
            "name": f"{parent.first_name} {parent.last_name}",
            "email": parent.email,
            "waiting": waiting,
            "invited": format_local(invited_at, settings.timezone) if invited_at else None,
        }
        for parent, waiting, invited_at in await service.families_awaiting(session)
    ]
    return await render(request, "office_billing_setup.html", title="Billing set-up", families=families)


@router.post(OFFICE_PATH + "/{parent_id}/invite")
async def invite(
    parent_id: uuid.UUID, user: AdminUser, session: SessionDep, context: ContextDep, identity: IdentityDep
) -> Response:
    """The same service as ``POST /api/v1/families/{id}/billing-setup``: one email per parent."""
    sent = await service.invite(session, context.sessions, context.settings, context.mailer, identity, user, parent_id)
    return redirect(f"{OFFICE_PATH}?notice=billing_invited{'_before' if sent.already_sent else ''}")
