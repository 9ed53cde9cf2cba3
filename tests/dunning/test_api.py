"""Admins see a family's dunning and pause, resume, retry now or forgive it through the API, each audited."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy import select
from sqlmodel import col

from core.db import SessionFactory, transaction
from models import AuditLog, BillingAccount, Role
from tests.dunning.conftest import DunningKit, failure
from tests.waiting import eventually

BASE = "/api/v1/dunning/families"


async def test_admin_sees_and_steers_a_familys_dunning_and_every_action_is_audited(
    kit: DunningKit, api: httpx.AsyncClient, auth_headers: Callable[..., Any], sessions: SessionFactory
) -> None:
    admin = await auth_headers(Role.admin)
    family = kit.family.parent_id
    async with transaction(sessions) as session:
        session.add(BillingAccount(parent_id=family, workflow_id=f"family-billing-{family}"))
    await kit.fail(failure(kit.family, decline_code="stolen_card"))

    view = (await api.get(f"{BASE}/{family}", headers=admin)).json()
    assert (view["active"], view["state"], view["paused"]) == (True, "clear", False)
    assert [i["stripe_invoice_id"] for i in view["invoices"]] == ["in_1"]

    reason = {"reason": "family called the office"}
    assert (await api.post(f"{BASE}/{family}/resume", json=reason, headers=admin)).status_code == 409
    paused = await api.post(f"{BASE}/{family}/pause", json=reason, headers=admin)
    assert paused.status_code == 202, paused.text

    async def shows_paused() -> bool:
        return bool((await api.get(f"{BASE}/{family}", headers=admin)).json()["paused"])

    await eventually(shows_paused, timeout=5, what="paused")

    async def mirrored() -> bool:  # billing_accounts follows, for admin lists and the sweep
        listed = (await api.get(BASE, params={"state": "clear"}, headers=admin)).json()["data"]
        return listed == [{"parent_id": str(family), "state": "clear", "paused": True}]

    await eventually(mirrored, timeout=5, what="the pause mirrored on the billing account")
    again = await api.post(f"{BASE}/{family}/pause", json=reason, headers=admin)
    assert again.status_code == 409
    assert again.json()["detail"] == "dunning is already paused for this family"
    assert (await api.post(f"{BASE}/{family}/resume", json=reason, headers=admin)).status_code == 202
    assert (await api.post(f"{BASE}/{family}/retry-now", json=reason, headers=admin)).status_code == 202
    [retry] = await kit.wait_retries(1, timeout=5)
    assert retry.attempt == 2
    assert (await api.post(f"{BASE}/{family}/forgive", json=reason, headers=admin)).status_code == 202
    assert await kit.dunning.result() == "clear"

    after = (await api.get(f"{BASE}/{family}", headers=admin)).json()
    assert (after["active"], after["state"]) == (False, "clear")
    ended = await api.post(f"{BASE}/{family}/pause", json=reason, headers=admin)
    assert ended.status_code == 409
    assert ended.json()["detail"] == "this family is not in dunning"
    async with sessions() as session:
        rows = list(
            await session.scalars(
                select(AuditLog).where(col(AuditLog.entity_id) == str(family)).order_by(col(AuditLog.occurred_at))
            )
        )
    assert [row.action for row in rows] == ["dunning.pause", "dunning.resume", "dunning.retry-now", "dunning.forgive"]
    assert all(row.actor_role == "admin" and row.after == {"action": row.action[8:], **reason} for row in rows)


async def test_only_admins_may_act_on_existing_families_with_a_reason(
    kit: DunningKit, api: httpx.AsyncClient, auth_headers: Callable[..., Any], sessions: SessionFactory
) -> None:
    admin, parent = await auth_headers(Role.admin), await auth_headers(Role.parent)
    family = kit.family.parent_id
    assert (await api.get(f"{BASE}/{family}", headers=parent)).status_code == 403
    assert (await api.post(f"{BASE}/{family}/pause", json={"reason": "because"}, headers=parent)).status_code == 403
    assert (await api.get(f"{BASE}/{family}")).status_code == 401
    assert (await api.get(f"{BASE}/{uuid.uuid4()}", headers=admin)).status_code == 404
    short = await api.post(f"{BASE}/{family}/pause", json={"reason": ""}, headers=admin)
    assert short.status_code == 422
    assert "reason" in short.json()["fields"]
    async with transaction(sessions) as session:
        session.add(BillingAccount(parent_id=family, workflow_id=f"family-billing-{family}", dunning_state="suspended"))
    listed = (await api.get(BASE, headers=admin)).json()
    assert listed == {"data": [{"parent_id": str(family), "state": "suspended", "paused": False}], "count": 1}
    assert (await api.get(BASE, params={"state": "warning"}, headers=admin)).json()["count"] == 0
    assert (await api.get(BASE, params={"state": "late"}, headers=admin)).status_code == 422


async def test_actions_answer_with_the_workflows_snapshot_and_a_retried_request_gets_the_same_answer(
    kit: DunningKit, api: httpx.AsyncClient, auth_headers: Callable[..., Any], sessions: SessionFactory
) -> None:
    admin = await auth_headers(Role.admin)
    family = kit.family.parent_id
    async with transaction(sessions) as session:
        session.add(BillingAccount(parent_id=family, workflow_id=f"family-billing-{family}"))
    await kit.fail(failure(kit.family, decline_code="stolen_card"))
    reason = {"reason": "the parent is in hospital"}
    key = {"Idempotency-Key": str(uuid.uuid4())}

    paused = await api.post(f"{BASE}/{family}/pause", json=reason, headers={**admin, **key})
    assert paused.status_code == 202, paused.text
    answer = paused.json()
    assert (answer["action"], answer["paused"], answer["state"]) == ("pause", True, "clear")
    assert [i["stripe_invoice_id"] for i in answer["invoices"]] == ["in_1"]
    assert answer["timeline"][-1]["kind"] == "paused"
    assert answer["timeline"][-1]["detail"] == reason["reason"]  # from the audit row, not the workflow

    retried = await api.post(f"{BASE}/{family}/pause", json=reason, headers={**admin, **key})
    assert retried.status_code == 202, retried.text
    assert retried.json() == answer
    refused = await api.post(f"{BASE}/{family}/pause", json=reason, headers=admin)  # a new request: the validator
    assert refused.status_code == 409
    assert refused.json()["detail"] == "dunning is already paused for this family"

    resumed = await api.post(f"{BASE}/{family}/resume", json=reason, headers={**admin, **key})  # scoped by action
    assert resumed.status_code == 202, resumed.text
    assert resumed.json()["paused"] is False

    forgiven = await api.post(f"{BASE}/{family}/forgive", json=reason, headers=admin)
    assert forgiven.status_code == 202, forgiven.text
    assert forgiven.json()["invoices"] == []  # answered once billing was asked to write the debt off
    assert await kit.dunning.result() == "clear"
    [write_off] = (await kit.recorded()).write_offs
    assert write_off.reason_note_id is not None

    async with sessions() as session:
        rows = list(
            await session.scalars(
                select(AuditLog).where(col(AuditLog.entity_id) == str(family)).order_by(col(AuditLog.occurred_at))
            )
        )
    assert [row.action for row in rows] == ["dunning.pause", "dunning.resume", "dunning.forgive"]
    assert rows[0].after == {"action": "pause", **reason, **{"idempotency_key": key["Idempotency-Key"]}}
    assert write_off.reason_note_id == rows[2].id
