"""A parent's pages: ``/family`` (home), ``/family/card``, lesson cancellation, receipts, a sibling's enrollment,
consents and the data export.

Each calls the service its JSON twin calls, with the signed-in parent as principal: the same role and row-level
rules, so another family's lesson or payment is a 404 here too.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import ContextDep, SessionDep, SettingsDep, TemporalDep
from api.errors import CedarError
from api.limits import client_ip, limit_enrollment
from api.pages.web import HOME, NAV, NOTICES, ParentUser, page_router, redirect, render
from api.principal import Principal
from api.repositories import catalog
from api.repositories import family as family_repository
from api.schemas.enrollment import EnrollmentCreate, PaymentMethodId
from api.schemas.makeups import MakeupBooking
from api.schemas.school import ConsentChange
from api.services import billing as billing_service
from api.services import billing_setup as billing_setup_service
from api.services import calendar_feeds as feed_service
from api.services import enrollments as enrollment_service
from api.services import family as family_service
from api.services import invoices as invoice_service
from api.services import lessons as lesson_service
from api.services import makeups as makeup_service
from api.services import parents as parent_service
from api.services import privacy as privacy_service
from api.services import reenrollments as reenrollment_service
from core.db import transaction
from core.page_links import BILLING_SETUP_PATH, CARD_PATH, reenrollment_path
from core.settings import Settings
from domain.local_time import format_local
from domain.makeups import CreditStatus
from domain.money import format_money
from models import ConsentKind, Invoice, Role

router = page_router()

NAV[Role.parent] = [
    ("/family", "Home"),
    ("/family/card", "Card"),
    ("/family/enroll", "Enroll a child"),
    ("/family/privacy", "Privacy"),
]
HOME[Role.parent] = "/family"
NOTICES.update(
    {
        "card_saved": "Your new card is saved. Unpaid invoices are being charged to it now: they show as paid here "
        "within a minute (reload the page).",
        "lesson_cancelled": "The lesson is cancelled.",
        "lesson_cancelled_credit": "The lesson is cancelled; you earned a make-up credit (below).",
        "lesson_cancelled_forfeited": "The lesson is cancelled; it is forfeited (no make-up credit).",
        "makeup_booked": "Your make-up lesson is booked: it is in your upcoming lessons.",
        "consent_saved": "Your choice is saved.",
        "feed_issued": "Your calendar link is ready: copy it into your calendar app (below).",
        "feed_revoked": "The calendar link is revoked: calendar apps using it stop receiving lessons.",
        "nothing_to_confirm": "That invoice has nothing to confirm now (it is paid or closed, or your bank no longer "
        "asks). If a payment is still due, you can pay it with another card here.",
    }
)
CONSENT_LABELS = {
    ConsentKind.privacy_policy: "The school's privacy policy",
    ConsentKind.marketing_email: "The school's news by email",
}
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
WINDOW_ROWS = 3
STATUS_LABELS = {
    "paid": ("Paid", "ok"),
    "past_due": ("Unpaid — payment failed", "bad"),
    "open": ("Due", ""),
    "draft": ("Being prepared", ""),
    "void": ("Cancelled", ""),
    "uncollectible": ("Written off", "bad"),
}


def _parent_id(user: Principal) -> uuid.UUID:
    assert user.parent_id is not None  # a parent's account always has its family row
    return user.parent_id


def _invoice_status(invoice: Invoice) -> tuple[str, str]:
    """How a parent reads an invoice's status, and its style (an unpaid invoice after a failed payment is "bad")."""
    if invoice.status in ("open", "past_due") and invoice.first_failed_at is not None:
        return STATUS_LABELS["past_due"]
    return STATUS_LABELS.get(invoice.status, (invoice.status.replace("_", " ").capitalize(), ""))


def _local_date(settings: Settings, at: Any) -> str:
    return at.astimezone(settings.timezone).date().isoformat() if at else ""


# --- home ---


@router.get("/family")
async def family_home(request: Request, user: ParentUser, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    found = await family_service.overview(session, settings, user)
    billing = found.billing
    receipts: dict[uuid.UUID, uuid.UUID] = {}
    if billing is not None:
        for payment in billing.payments:
            if payment.invoice_id is not None and payment.status in ("succeeded", "partially_refunded", "refunded"):
                receipts.setdefault(payment.invoice_id, payment.id)
    invoices = [
        {
            "date": _local_date(settings, invoice.period_start or invoice.created_at),
            "amount": format_money(invoice.amount_due_minor, invoice.currency),
            "status": _invoice_status(invoice)[0],
            "status_class": _invoice_status(invoice)[1],
            "receipt": receipts.get(invoice.id),
        }
        for invoice in (billing.invoices if billing else [])
    ]
    unpaid = found.unpaid
    currency = settings.currency
    feed = await feed_service.current(session, settings, user, feed_service.Owner(parent_id=_parent_id(user)))
    now = datetime.now(UTC)
    names = {student.id: student.first_name for student in found.students}
    credits = [
        {
            "id": credit.id,
            "student": names.get(credit.student_id, ""),
            "minutes": credit.lesson_minutes,
            "expires": format_local(credit.expires_at, settings.timezone),
        }
        for credit in await makeup_service.list_credits(session, user, None, CreditStatus.available)
        if credit.expires_at > now
    ]
    reenrollments = [
        {
            "url": reenrollment_path(item.semester_id),
            "deadline": format_local(item.deadline, settings.timezone),
            "unanswered": item.unanswered,
        }
        for item in await reenrollment_service.open_for_family(session, _parent_id(user))
    ]
    # An imported family without a card: its lessons are not billed until it gives one (api/pages/billing_setup.py).
    setup = await billing_setup_service.status(session, settings, user, _parent_id(user))
    return await render(
        request,
        "family_home.html",
        title="Your family",
        billing_setup_url=BILLING_SETUP_PATH if setup.awaiting else None,
        students=found.students,
        lessons=[
            {
                "id": item.lesson.id,
                "when": format_local(item.lesson.starts_at, settings.timezone),
                "student": item.student.first_name if item.student else "",
                "kind": "Demo lesson" if item.lesson.kind == "demo" else "Lesson",
                "teacher": item.teacher,
                "status": item.lesson.status,
                "cancellable": item.cancellable,
                "late": not item.cancellable and item.lesson.kind != "demo",
            }
            for item in found.lessons
        ],
        notice_hours=int(settings.parent_cancel_notice.total_seconds() // 3600),
        billing=billing is not None,
        balance=format_money(abs(billing.balance_minor) if billing else 0, currency),
        balance_owed=bool(billing and billing.balance_minor > 0),
        has_card=bool(billing and billing.account.default_payment_method_id),
        dunning_state=billing.account.dunning_state if billing else "clear",
        invoices=invoices,
        unpaid=unpaid,
        unpaid_total=format_money(sum(i.amount_due_minor - i.amount_paid_minor for i in unpaid), currency),
        feed=feed,
        credits=credits,
        reenrollments=reenrollments,
    )


# --- the card ---


def card_csp(settings: Settings) -> str:
    """The page CSP plus what Stripe.js needs: its script, its frames (the card field, 3-D Secure) and its API."""
    if settings.uses_localstripe:
        parts = urlsplit(settings.stripe_js_url)
        origin = f"{parts.scheme}://{parts.netloc}"
        extra = {"script-src": [origin], "frame-src": [origin], "connect-src": [origin]}
    else:
        extra = {
            "script-src": ["https://js.stripe.com"],
            "frame-src": ["https://js.stripe.com", "https://hooks.stripe.com"],
            "connect-src": ["https://api.stripe.com"],
        }
    directives: dict[str, list[str]] = {}
    for directive in settings.page_content_security_policy.split(";"):
        name, *sources = directive.split()
        directives[name] = sources
    for name, sources in extra.items():
        directives[name] = [s for s in directives.get(name, ["'self'"]) if s != "'none'"] + sources
    return "; ".join(" ".join([name, *sources]) for name, sources in directives.items())


async def _card_form(
    request: Request,
    settings: Settings,
    template: str,
    client_secret: str | None,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    page = await render(
        request,
        template,
        status,
        stripe_key=settings.stripe_publishable_key,
        client_secret=client_secret or "",
        scripts=[settings.stripe_js_url, "/static/card.js"] if client_secret else [],
        **values,
    )
    if client_secret:
        page.headers["Content-Security-Policy"] = card_csp(settings)
    return page


async def _card_page(
    request: Request, session: AsyncSession, settings: Settings, user: Principal, problem: str | None = None
) -> HTMLResponse:
    secret = await billing_service.card_setup(session, settings, user, _parent_id(user))
    if secret is None:
        return await render(
            request,
            "message.html",
            title="Your card",
            message="Billing has not started yet: the card you gave when enrolling is charged when the first regular "
            "lesson comes. You can change it here from then on.",
            link=("/family", "Back to your family's page"),
        )
    return await _card_form(
        request,
        settings,
        "family_card.html",
        secret,
        402 if problem else 200,
        title="Update your card",
        action="/family/card",
        submit_label="Save this card",
        problem=problem,
    )


@router.get("/family/card")
async def card_page(request: Request, user: ParentUser, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    return await _card_page(request, session, settings, user)


@router.post("/family/card")
async def save_card(
    request: Request,
    user: ParentUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    payment_method_id: Annotated[PaymentMethodId, Form()],
) -> Response:
    """The same service as ``PUT /api/v1/billing/families/{id}/card``: the card becomes the default and past-due
    invoices are retried with it; a decline shows the form again with the reason."""
    try:
        await billing_service.change_card(session, temporal, settings, user, _parent_id(user), payment_method_id)
    except CedarError as refused:
        if refused.status_code != 402:
            raise
        return await _card_page(request, session, settings, user, "Your bank declined this card. Try another card.")
    return redirect("/family?notice=card_saved")


# --- the calendar feed ---


@router.post("/family/calendar-feed")
async def issue_feed(user: ParentUser, session: SessionDep, settings: SettingsDep) -> Response:
    """The same service as ``POST /api/v1/parents/{id}/calendar-feed``: the family's link (the current one if any)."""
    await feed_service.issue(session, settings, user, feed_service.Owner(parent_id=_parent_id(user)))
    return redirect("/family?notice=feed_issued#feed-title")


@router.post("/family/calendar-feed/revoke")
async def revoke_feed(user: ParentUser, session: SessionDep) -> Response:
    """The same service as ``DELETE /api/v1/parents/{id}/calendar-feed``: the link is a 404 from now on."""
    await feed_service.revoke(session, user, feed_service.Owner(parent_id=_parent_id(user)))
    return redirect("/family?notice=feed_revoked#feed-title")


# --- lessons and receipts ---


@router.post("/family/lessons/{lesson_id}/cancel")
async def cancel_lesson(
    lesson_id: uuid.UUID, user: ParentUser, session: SessionDep, temporal: TemporalDep, settings: SettingsDep
) -> Response:
    """The API's lesson cancel: before the school's notice it earns a make-up credit, after it the lesson is
    forfeited; another family's is 404."""
    done = await lesson_service.cancel(session, temporal, settings, user, lesson_id, "cancelled by the family online")
    return redirect(f"/family?notice=lesson_cancelled_{done.outcome.outcome.value}")


# --- make-up credits ---


async def _slots_page(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    user: Principal,
    credit_id: uuid.UUID,
    problem: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    try:
        slots = await makeup_service.open_slots(session, settings, user, credit_id)
    except CedarError as refused:
        if refused.status_code != 409:
            raise
        return await render(
            request,
            "message.html",
            409,
            title="Book a make-up",
            message=" ".join(filter(None, [problem, f"This credit cannot be booked now: {refused.detail}."])),
            link=("/family", "Back to your family's page"),
        )
    names = await family_repository.teacher_names(session, {slot.teacher_id for slot in slots})
    return await render(
        request,
        "family_makeup.html",
        status,
        title="Book a make-up",
        credit_id=credit_id,
        problem=problem,
        slots=[
            {
                "starts_at": slot.starts_at.isoformat(),
                "teacher_id": slot.teacher_id,
                "when": format_local(slot.starts_at, settings.timezone),
                "teacher": names.get(slot.teacher_id, ""),
            }
            for slot in slots
        ],
    )


@router.get("/family/makeups/{credit_id}")
async def makeup_slots(
    request: Request, credit_id: uuid.UUID, user: ParentUser, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """The open slots of ``GET /api/v1/makeups/credits/{id}/slots``, each with a button that books it."""
    return await _slots_page(request, session, settings, user, credit_id)


@router.post("/family/makeups/{credit_id}/book")
async def book_makeup(
    request: Request,
    credit_id: uuid.UUID,
    user: ParentUser,
    session: SessionDep,
    settings: SettingsDep,
    temporal: TemporalDep,
    starts_at: Annotated[str, Form(max_length=64)],
    teacher_id: Annotated[uuid.UUID, Form()],
) -> Response:
    """The same service as ``POST /api/v1/makeups/credits/{id}/book``: a slot or credit taken meanwhile (409) or
    no longer bookable (422) shows the slots again with the reason."""
    try:
        booking = MakeupBooking.model_validate({"starts_at": starts_at, "teacher_id": teacher_id})
        await makeup_service.book(session, temporal, settings, user, credit_id, booking)
    except ValidationError:
        await session.rollback()
        return await _slots_page(request, session, settings, user, credit_id, "This time cannot be booked.", 422)
    except CedarError as refused:
        if refused.status_code not in (409, 422):
            raise
        await session.rollback()
        reason = "; ".join(refused.fields.values()) if refused.status_code == 422 and refused.fields else ""
        problem = f"Not booked: {refused.detail}{f' ({reason})' if reason else ''}. Choose another time."
        return await _slots_page(request, session, settings, user, credit_id, problem, refused.status_code)
    return redirect("/family?notice=makeup_booked")


@router.get("/family/invoices/{stripe_invoice_id}/confirm")
async def confirm_invoice(
    stripe_invoice_id: str, user: ParentUser, session: SessionDep, settings: SettingsDep
) -> RedirectResponse:
    """The dunning email's link: on to Stripe's page where the bank's confirmation is given, looked up now."""
    url = await billing_service.invoice_confirm_page(session, settings, user, _parent_id(user), stripe_invoice_id)
    return RedirectResponse(url, status_code=303) if url else redirect(f"{CARD_PATH}?notice=nothing_to_confirm")


@router.get("/family/payments/{payment_id}")
async def receipt(
    request: Request, payment_id: uuid.UUID, user: ParentUser, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    payment = await invoice_service.payment(session, user, payment_id)
    invoice = await invoice_service.invoice(session, user, payment.invoice_id) if payment.invoice_id else None
    period = ""
    if invoice is not None and invoice.period_start and invoice.period_end:
        period = f"{_local_date(settings, invoice.period_start)} to {_local_date(settings, invoice.period_end)}"
    return await render(
        request,
        "family_receipt.html",
        title="Receipt",
        amount=format_money(payment.amount_minor, payment.currency),
        paid_on=_local_date(settings, payment.created_at),
        reference=str(payment.id)[:8].upper(),
        payment_status={"succeeded": "Paid"}.get(payment.status, payment.status.replace("_", " ").capitalize()),
        refunded=format_money(payment.amount_refunded_minor, payment.currency) if payment.amount_refunded_minor else "",
        period=period,
    )


# --- a sibling's enrollment ---


def _blank_form() -> dict[str, Any]:
    return {
        "first_name": "",
        "last_name": "",
        "date_of_birth": "",
        "instrument": "",
        "lesson_minutes": "",
        "billing_interval": "month",
        "windows": [{"weekday": "", "start": "", "end": ""} for _ in range(WINDOW_ROWS)],
        "privacy_policy": False,
        "marketing_email": False,
    }


async def _enroll_page(
    request: Request,
    session: AsyncSession,
    settings: Settings,
    user: Principal,
    form: dict[str, Any],
    problem: str | None = None,
    status: int = 200,
) -> HTMLResponse:
    found = await billing_service.family_billing(session, user, _parent_id(user))
    card_on_file = bool(found and found.account.default_payment_method_id)
    secret = None if card_on_file else await billing_service.card_setup(session, settings, user, None)
    instruments = [(i.code, i.name) for i in await catalog.active_instruments(session)]
    return await _card_form(
        request,
        settings,
        "family_enroll.html",
        secret,
        status,
        title="Enroll a child",
        action="/family/enroll",
        submit_label="Enroll",
        problem=problem,
        form=form,
        instruments=instruments,
        lengths=settings.lesson_lengths_minutes,
        weekdays=WEEKDAYS,
        card_on_file=card_on_file,
        request_key=str(uuid.uuid4()),
    )


@router.get("/family/enroll")
async def enroll_page(request: Request, user: ParentUser, session: SessionDep, settings: SettingsDep) -> HTMLResponse:
    return await _enroll_page(request, session, settings, user, _blank_form())


def _submitted(fields: Any) -> dict[str, Any]:
    def text(name: str) -> str:
        value = fields.get(name)
        return value.strip()[:200] if isinstance(value, str) else ""

    rows = zip(fields.getlist("weekday"), fields.getlist("start"), fields.getlist("end"), strict=False)
    windows = [{"weekday": str(d), "start": str(s), "end": str(e)} for d, s, e in list(rows)[:WINDOW_ROWS]]
    windows += [{"weekday": "", "start": "", "end": ""} for _ in range(WINDOW_ROWS - len(windows))]
    return {
        "first_name": text("first_name"),
        "last_name": text("last_name"),
        "date_of_birth": text("date_of_birth"),
        "instrument": text("instrument"),
        "lesson_minutes": text("lesson_minutes"),
        "billing_interval": text("billing_interval") or "month",
        "windows": windows,
        "privacy_policy": text("privacy_policy") == "yes",
        "marketing_email": text("marketing_email") == "yes",
        "payment_method_id": text("payment_method_id"),
        "use_card_on_file": text("use_card_on_file") == "yes",
        "request_key": text("request_key"),
    }


def _application(form: dict[str, Any], payment_method_id: str) -> EnrollmentCreate:
    """The JSON API's request, from the form (a ValidationError names what is wrong)."""
    windows = [
        {"weekday": int(w["weekday"]), "start": time.fromisoformat(w["start"]), "end": time.fromisoformat(w["end"])}
        for w in form["windows"]
        if w["weekday"].isdigit() and w["start"] and w["end"]
    ]
    return EnrollmentCreate.model_validate(
        {
            "student": {
                "first_name": form["first_name"],
                "last_name": form["last_name"],
                "date_of_birth": date.fromisoformat(form["date_of_birth"]) if form["date_of_birth"] else None,
            },
            "instrument": form["instrument"],
            "lesson_minutes": int(form["lesson_minutes"]) if form["lesson_minutes"].isdigit() else 0,
            "billing_interval": form["billing_interval"],
            "preferred_windows": windows,
            "payment_method_id": payment_method_id,
            "consents": {"privacy_policy": form["privacy_policy"], "marketing_email": form["marketing_email"]},
        }
    )


FIELD_NAMES = {
    "student.first_name": "first name",
    "student.last_name": "last name",
    "student.date_of_birth": "date of birth",
    "instrument": "instrument",
    "lesson_minutes": "lesson length",
    "preferred_windows": "weekly times",
    "consents.privacy_policy": "privacy policy",
    "payment_method_id": "card",
}


def _problems(error: ValidationError | CedarError) -> str:
    if isinstance(error, CedarError):
        fields = error.fields
    else:
        fields = {
            ".".join(str(p) for p in e["loc"] if not isinstance(p, int)): str(e["msg"]).removeprefix("Value error, ")
            for e in error.errors()
        }
    named = [f"{FIELD_NAMES.get(k, k.split('.')[0].replace('_', ' '))}: {v}" for k, v in fields.items()]
    return "Please check: " + "; ".join(named) + "." if named else error.__class__.__name__


@router.post("/family/enroll")
async def enroll(
    request: Request,
    user: ParentUser,
    session: SessionDep,
    context: ContextDep,
    temporal: TemporalDep,
) -> Response:
    """The same service as ``POST /api/v1/enrollments`` with the signed-in parent: the family's own act, so no
    confirmation round trip; limited like the public form."""
    settings = context.settings
    form = _submitted(await request.form())
    payment_method_id = form["payment_method_id"]
    if form["use_card_on_file"]:
        found = await billing_service.family_billing(session, user, _parent_id(user))
        payment_method_id = (found.account.default_payment_method_id if found else None) or ""
    try:
        body = _application(form, payment_method_id)
    except ValidationError as invalid:
        return await _enroll_page(request, session, settings, user, form, _problems(invalid), 422)
    except ValueError:  # a date or time the browser should not have sent
        return await _enroll_page(request, session, settings, user, form, "Please check the dates and times.", 422)
    key = f"page:{user.user_id}:{form['request_key'][:64]}" if form["request_key"] else None
    await limit_enrollment(context, client_ip(request), user.email, key)

    async def caller(_: AsyncSession) -> Principal:
        return user

    try:
        enrollment = await enrollment_service.create(context.sessions, temporal, settings, body, key, caller)
    except CedarError as refused:
        if refused.status_code != 422:
            raise
        return await _enroll_page(request, session, settings, user, form, _problems(refused), 422)
    return redirect(f"/enrollments/{enrollment.id}")


# --- consents and the data export ---


@router.get("/family/privacy")
async def privacy_page(request: Request, user: ParentUser, session: SessionDep) -> HTMLResponse:
    consents = await parent_service.consents(session, user, _parent_id(user))
    granted = {c.kind for c in consents if c.granted and c.withdrawn_at is None}
    return await render(
        request,
        "family_privacy.html",
        title="Your data and consents",
        consents=[(kind.value, label, kind.value in granted) for kind, label in CONSENT_LABELS.items()],
    )


@router.post("/family/consents")
async def change_consent(
    user: ParentUser,
    session: SessionDep,
    kind: Annotated[ConsentKind, Form()],
    granted: Annotated[bool, Form()],
) -> Response:
    """The same service as ``POST /api/v1/parents/{id}/consents``."""
    await parent_service.change_consent(session, user, _parent_id(user), ConsentChange(kind=kind, granted=granted))
    return redirect("/family/privacy?notice=consent_saved")


@router.get("/family/privacy/export")
async def export(user: ParentUser, context: ContextDep) -> Response:
    """The same export as ``GET /api/v1/privacy/export`` (one transaction: a consistent snapshot; audited)."""
    async with transaction(context.sessions) as session:
        data = await privacy_service.audited_export(session, user, _parent_id(user))
    return JSONResponse(
        data,
        headers={"Content-Disposition": 'attachment; filename="family-data.json"', "Cache-Control": "no-store"},
    )
