"""``/api/v1/invoices`` and ``/api/v1/payments``: money records mirrored from Stripe (read only here; billing acts).

A parent sees their family's; admins see all, and their reads are audited.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import Depends, Query

from api.deps import SessionDep
from api.pagination import Page, PageDep, SortOrder, page_of, sorting
from api.principal import Principal, require_roles
from api.repositories.audit import bind_request_id
from api.routing import IndexedRouter
from api.schemas.common import error_responses
from api.schemas.records import InvoiceOut, PaymentOut
from api.services import invoices as service
from models import Invoice, Payment, Role

router = IndexedRouter(
    prefix="/api/v1",
    tags=["billing-records"],
    dependencies=[Depends(bind_request_id)],
    responses=error_responses(401, 403, 404, 422),
)

FamilyPrincipal = Annotated[Principal, Depends(require_roles(Role.admin, Role.parent))]
InvoiceSort = Annotated[
    SortOrder,
    Depends(
        sorting(
            {
                "created_at": Invoice.created_at,
                "period_start": Invoice.period_start,
                "amount_due_minor": Invoice.amount_due_minor,
            },
            "-created_at",
        )
    ),
]
PaymentSort = Annotated[
    SortOrder, Depends(sorting({"created_at": Payment.created_at, "amount_minor": Payment.amount_minor}, "-created_at"))
]
Status = Annotated[str | None, Query(max_length=32)]


@router.get("/invoices", response_model=Page[InvoiceOut], summary="List invoices")
async def list_invoices(
    session: SessionDep,
    principal: FamilyPrincipal,
    page: PageDep,
    order: InvoiceSort,
    status: Status = None,
    billing_account_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    rows, total = await service.invoice_page(session, principal, page, order, status, billing_account_id)
    return page_of(rows, total, page)


@router.get("/invoices/{invoice_id}", response_model=InvoiceOut, summary="One invoice")
async def get_invoice(session: SessionDep, principal: FamilyPrincipal, invoice_id: uuid.UUID) -> Invoice:
    return await service.invoice(session, principal, invoice_id)


@router.get("/payments", response_model=Page[PaymentOut], summary="List payments")
async def list_payments(
    session: SessionDep,
    principal: FamilyPrincipal,
    page: PageDep,
    order: PaymentSort,
    status: Status = None,
    invoice_id: uuid.UUID | None = None,
    billing_account_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    rows, total = await service.payment_page(session, principal, page, order, status, invoice_id, billing_account_id)
    return page_of(rows, total, page)


@router.get("/payments/{payment_id}", response_model=PaymentOut, summary="One payment")
async def get_payment(session: SessionDep, principal: FamilyPrincipal, payment_id: uuid.UUID) -> Payment:
    return await service.payment(session, principal, payment_id)
