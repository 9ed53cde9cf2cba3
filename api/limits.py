"""Limits on the public edges that no sign-in protects: how often one address may use the enrollment form.

Counted in PostgreSQL (``core.rate_limit``), so every API process and host shares one budget.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import Request

from api.deps import AppContext, ContextDep
from api.errors import CedarError
from api.repositories.enrollments import idempotency_key_used
from core.db import transaction
from core.rate_limit import Limit, account_key, hit, ip_key, purge_past_windows

HOUR = timedelta(hours=1)


def client_ip(request: Request) -> str:
    """The peer's address; behind a proxy, uvicorn's ``--proxy-headers`` makes it the client's."""
    return request.client.host if request.client else "unknown"


async def _parent_email(request: Request) -> str | None:
    """``parent.email`` of the JSON body, or None; a malformed body is left for validation to refuse (422)."""
    try:
        body = await request.json()  # Starlette keeps the body, so the route still reads it
    except ValueError:
        return None
    parent = body.get("parent") if isinstance(body, dict) else None
    email = parent.get("email") if isinstance(parent, dict) else None
    return email if isinstance(email, str) and email.strip() else None


async def limit_public_enrollment(request: Request, context: ContextDep) -> None:
    """429 with ``Retry-After`` once a client IP or a parent email has used up its hourly enrollments.

    Each POST sends a welcome email and creates Stripe objects; a retry under an ``Idempotency-Key`` already
    used does neither, so it is not counted.
    """
    email = await _parent_email(request)
    await limit_enrollment(context, client_ip(request), email, request.headers.get("Idempotency-Key"))


async def limit_enrollment(context: AppContext, ip: str, email: str | None, key: str | None) -> None:
    """The same hourly budgets for an enrollment made elsewhere (the family's page): per IP and per email."""
    settings = context.settings
    limits = [Limit(ip_key("enrollment", ip), settings.enrollment_rate_limit_per_hour_ip, HOUR)]
    if email is not None:
        limits.append(Limit(account_key("enrollment", email), settings.enrollment_rate_limit_per_hour_email, HOUR))
    async with transaction(context.sessions) as session:
        if key and await idempotency_key_used(session, key[:255]):
            return
        wait = await hit(session, limits)
    async with transaction(context.sessions) as session:
        await purge_past_windows(session)
    if wait is not None:
        raise CedarError(
            429,
            "rate_limited",
            "too many enrollments from this address or for this email; retry later",
            headers={"Retry-After": str(wait)},
        )
