"""The public form cannot rewire a family: an address that already has one waits for its owner's emailed answer.

Reproduces the takeover of issue #12 (a stranger typing another parent's address adds a child, consents and a
card to that family) on the real stack, and shows that nothing of the family changes until the owner confirms.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlmodel import col
from temporalio.client import Client
from temporalio.worker import Replayer

from activities.enrollment import EnrollmentActivities
from core.contracts.enrollment import EnrollmentRef
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.stripe import create_stripe_client
from core.temporal import enrollment_workflow_id
from devstack.smtp_sink import SmtpSink
from models import AuditLog, Consent, ConsentKind, Parent, Role, Student, Subscription, User
from tests.billing.conftest import billed_family, card
from tests.enrollment.conftest import EnrollmentWorker
from tests.enrollment.helpers import (
    application,
    count_rows,
    enroll,
    enrollment_row,
    mail_of,
    wait_for_state,
)
from workers.main import build_deps, build_worker, workflow_runner
from workers.registry import WorkerDeps
from workflows.enrollment import EnrollmentWorkflow

LINK = re.compile(r"(/confirm-enrollment\?enrollment=[0-9a-f-]+&token=[A-Za-z0-9_-]+)")


def _stranger(email: str, **overrides: Any) -> dict[str, Any]:
    return application(
        parent={"first_name": "Mallory", "last_name": "Stone", "email": email, "phone": "+1 604 555 0199"},
        student={"first_name": "Ben", "last_name": "Stone", "date_of_birth": "2016-06-01"},
        instrument="guitar",
        consents={"privacy_policy": True, "marketing_email": True},
        **overrides,
    )


async def _confirmation_link(smtp_sink: SmtpSink, enrollment_id: str) -> str:
    mail = await mail_of(smtp_sink, enrollment_id, {"confirm-family"})
    [message] = mail["confirm-family"]
    found = LINK.search(message["text"])
    assert found, message["text"]
    return found.group(1)


async def _token(smtp_sink: SmtpSink, enrollment_id: str) -> str:
    return (await _confirmation_link(smtp_sink, enrollment_id)).rsplit("token=", 1)[1]


async def _consents(sessions: SessionFactory, parent_id: uuid.UUID) -> list[tuple[str, bool]]:
    async with sessions() as session:
        rows = await session.execute(
            select(col(Consent.kind), col(Consent.granted))
            .where(col(Consent.parent_id) == parent_id)
            .order_by(col(Consent.granted_at))
        )
        return [(kind, granted) for kind, granted in rows]


async def _a_family(api: httpx.AsyncClient, sessions: SessionFactory) -> tuple[dict[str, Any], uuid.UUID]:
    """A family made through the form (its child's demo booked): its application and its parent's id."""
    owner = application()
    first = await enroll(api, owner)
    await wait_for_state(api, first, "demo_scheduled")
    parent_id = (await enrollment_row(sessions, first)).parent_id
    assert parent_id is not None
    return owner, parent_id


async def test_a_stranger_using_a_familys_address_changes_nothing_until_the_owner_confirms(
    make_settings: Callable[..., Settings],
    sessions: SessionFactory,
    temporal_client: Client,
    api: httpx.AsyncClient,
    demo_data: None,
    smtp_sink: SmtpSink,
) -> None:
    settings = make_settings()
    stripe_client = create_stripe_client(settings)
    async with build_worker(temporal_client, build_deps(settings, sessions, temporal_client)):
        victim = await billed_family(sessions, settings, temporal_client, stripe_client)
        family = victim.family
        email = f"victim-{uuid.uuid4().hex[:8]}@family.example"  # the form's validator refuses .test addresses
        async with transaction(sessions) as session:
            await session.execute(update(User).where(col(User.id) == family.user_id).values(email=email))
            await session.execute(update(Parent).where(col(Parent.id) == family.parent_id).values(email=email))
            for kind in ConsentKind:
                session.add(Consent(parent_id=family.parent_id, kind=kind, granted=kind == ConsentKind.privacy_policy))
        consents_before = await _consents(sessions, family.parent_id)
        customer = await stripe_client.v1.customers.retrieve_async(victim.account.stripe_customer_id or "")
        card_before = customer.invoice_settings.default_payment_method if customer.invoice_settings else None
        assert card_before

        strangers_card = await card(stripe_client, "4000000000000341")
        enrollment_id = await enroll(api, _stranger(email.upper(), payment_method_id=strangers_card))
        status = await wait_for_state(api, enrollment_id, "awaiting_confirmation")
        link = await _confirmation_link(smtp_sink, enrollment_id)

        # Parked: the family's children, consents, card and subscriptions are as they were.
        assert "Mallory" not in str(status)
        assert "Ben" not in str(status)
        assert (await enrollment_row(sessions, enrollment_id)).parent_id is None
        assert await count_rows(sessions, Student, Student.parent_id == family.parent_id) == 1
        assert await _consents(sessions, family.parent_id) == consents_before
        customer = await stripe_client.v1.customers.retrieve_async(victim.account.stripe_customer_id or "")
        assert customer.invoice_settings
        assert customer.invoice_settings.default_payment_method == card_before
        assert await count_rows(sessions, Subscription, Subscription.billing_account_id == victim.account.id) == 1
        assert await count_rows(sessions, Parent, Parent.email == email) == 1

        # The owner opens the link (which changes nothing by itself) and confirms.
        page = await api.get(link)
        assert page.status_code == 200
        assert "text/html" in page.headers["content-type"]
        assert "Ben" in page.text
        assert "guitar" in page.text
        assert (await wait_for_state(api, enrollment_id, "awaiting_confirmation"))["state"] == "awaiting_confirmation"
        form = dict(re.findall(r'name="(\w+)" value="([^"]*)"', page.text.split("</form>")[0]))
        assert form["decision"] == "confirm"
        answered = await api.post("/confirm-enrollment", data=form)
        assert answered.status_code == 200, answered.text
        assert "Answer received" in answered.text, answered.text

        await wait_for_state(api, enrollment_id, "demo_scheduled", "waitlisted")
    row = await enrollment_row(sessions, enrollment_id)
    assert row.parent_id == family.parent_id
    assert row.family_confirmed_at is not None
    assert await count_rows(sessions, Student, Student.parent_id == family.parent_id) == 2
    assert await _consents(sessions, family.parent_id) == consents_before  # the form never changes consents
    assert await count_rows(sessions, User, User.email == email) == 1
    assert await count_rows(sessions, AuditLog, AuditLog.action == "family_confirm") == 1
    # A used link answers, but cannot act again.
    again = await api.post(f"/api/v1/enrollments/{enrollment_id}/family-confirmation", json=form_json(form))
    assert again.status_code == 409


def form_json(form: dict[str, str]) -> dict[str, str]:
    return {"token": form["token"], "decision": form["decision"]}


async def test_the_owner_declines_and_the_enrollment_closes_with_the_family_untouched(
    api: httpx.AsyncClient,
    temporal_client: Client,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
) -> None:
    async with enrollment_worker():
        owner, parent_id = await _a_family(api, sessions)
        consents_before = await _consents(sessions, parent_id)
        stranger = await enroll(api, _stranger(owner["parent"]["email"]))
        await wait_for_state(api, stranger, "awaiting_confirmation")
        token = await _token(smtp_sink, stranger)

        wrong = await api.post(
            f"/api/v1/enrollments/{stranger}/family-confirmation", json={"token": "x" * 43, "decision": "confirm"}
        )
        assert wrong.status_code == 404
        page = await api.get(f"/confirm-enrollment?enrollment={stranger}&token={'x' * 43}")
        assert page.status_code == 404
        assert "no longer works" in page.text

        declined = await api.post(
            f"/api/v1/enrollments/{stranger}/family-confirmation", json={"token": token, "decision": "decline"}
        )
        assert declined.status_code == 200, declined.text
        closed = await wait_for_state(api, stranger, "cancelled")
    assert closed["failure_reason"] == "the family declined the enrollment"
    assert await count_rows(sessions, Student, Student.parent_id == parent_id) == 1
    assert await _consents(sessions, parent_id) == consents_before
    assert (await enrollment_row(sessions, stranger)).student_id is None
    # Nothing but the confirmation request was sent for the stranger's enrollment.
    assert set(await mail_of(smtp_sink, stranger, {"confirm-family"})) == {"confirm-family"}
    # The waiting path replays deterministically (what a worker restart or a redeploy must preserve).
    replayer = Replayer(
        workflows=[EnrollmentWorkflow], workflow_runner=workflow_runner(), data_converter=temporal_client.data_converter
    )
    history = await temporal_client.get_workflow_handle(enrollment_workflow_id(stranger)).fetch_history()
    assert (await replayer.replay_workflow(history, raise_on_replay_failure=False)).replay_failure is None


@pytest.mark.enrollment_settings(family_confirmation_timeout=timedelta(seconds=2))
async def test_an_unanswered_confirmation_expires_and_closes(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
) -> None:
    async with enrollment_worker():
        owner, parent_id = await _a_family(api, sessions)
        stranger = await enroll(api, _stranger(owner["parent"]["email"]))
        token = await _token(smtp_sink, stranger)
        closed = await wait_for_state(api, stranger, "cancelled")
        late = await api.post(
            f"/api/v1/enrollments/{stranger}/family-confirmation", json={"token": token, "decision": "confirm"}
        )
    assert closed["failure_reason"] == "the family did not confirm within 1 day(s)"
    assert late.status_code == 409
    assert "cancelled" in late.json()["detail"]
    assert await count_rows(sessions, Student, Student.parent_id == parent_id) == 1


async def test_a_signed_in_parent_enrolls_a_sibling_directly_without_touching_consents(
    api: httpx.AsyncClient,
    demo_data: None,
    enrollment_worker: EnrollmentWorker,
    sessions: SessionFactory,
    smtp_sink: SmtpSink,
    auth_headers: Callable[..., Any],
) -> None:
    async with enrollment_worker():
        _, parent_id = await _a_family(api, sessions)
        async with sessions() as session:
            parent = await session.get(Parent, parent_id)
            assert parent is not None
            assert parent.user_id is not None
        consents_before = await _consents(sessions, parent_id)
        headers = await auth_headers(Role.parent, user_id=parent.user_id)
        sibling = {key: value for key, value in _stranger("ignored@example.com").items() if key != "parent"}
        response = await api.post("/api/v1/enrollments", json=sibling, headers=headers)
        assert response.status_code == 202, response.text
        sibling_id = response.json()["enrollment_id"]
        status = await wait_for_state(api, sibling_id, "demo_scheduled")
        await mail_of(smtp_sink, sibling_id, {"welcome-parent"})
    assert "awaiting_confirmation" not in [step["state"] for step in status["steps"]]
    assert (await enrollment_row(sessions, sibling_id)).parent_id == parent_id
    assert await count_rows(sessions, Student, Student.parent_id == parent_id) == 2
    assert await _consents(sessions, parent_id) == consents_before

    # Signed in as one family, the form cannot name another family's address.
    other = await api.post("/api/v1/enrollments", json=_stranger("someone.else@example.com"), headers=headers)
    assert other.status_code == 422
    assert "parent.email" in other.json()["fields"]


async def test_a_staff_address_or_a_missing_parent_is_refused_field_by_field(
    api: httpx.AsyncClient, demo_data: None, sessions: SessionFactory
) -> None:
    for role in (Role.admin, Role.teacher):
        email = f"{role}-{uuid.uuid4().hex[:6]}@cedarheights.example"
        async with transaction(sessions) as session:
            session.add(User(email=email, role=role))
        response = await api.post("/api/v1/enrollments", json=_stranger(email.upper()))
        assert response.status_code == 422, response.text
        assert "staff account" in response.json()["fields"]["parent.email"]
    no_parent = {key: value for key, value in application().items() if key != "parent"}
    response = await api.post("/api/v1/enrollments", json=no_parent)
    assert response.status_code == 422
    assert "parent" in response.json()["fields"]
    assert await count_rows(sessions, Parent) == 0


async def test_a_replayed_family_check_finds_the_family_this_enrollment_made(
    api: httpx.AsyncClient, demo_data: None, enrollment_worker: EnrollmentWorker, worker_deps: WorkerDeps
) -> None:
    """A worker killed after the account step replays the check: the family it made is its own, not a stranger's."""
    async with enrollment_worker():
        enrollment_id = await enroll(api)
        await wait_for_state(api, enrollment_id, "demo_scheduled")
    activities = EnrollmentActivities(worker_deps.settings, worker_deps.sessions, worker_deps.identity)

    check = await activities.check_family(EnrollmentRef(enrollment_id=uuid.UUID(enrollment_id)))

    row = await enrollment_row(worker_deps.sessions, enrollment_id)
    assert check.needs_confirmation is False
    assert check.parent_id == row.parent_id
    assert row.state == "demo_scheduled"
