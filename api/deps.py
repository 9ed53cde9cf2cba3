"""FastAPI dependencies: the app's shared clients, the request's database session, interim admin auth."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from temporalio.client import Client

from api.errors import CedarError
from api.inbox_writer import WebhookInboxWriter
from core.db import SessionFactory
from core.identity import IdentityService, create_identity_service
from core.mail import Mailer
from core.settings import Settings
from core.temporal import LazyTemporalClient


@dataclass
class AppContext:
    """What the API process holds for its whole life; built by the lifespan in ``api.main``."""

    settings: Settings
    engine: AsyncEngine
    sessions: SessionFactory
    # Sessions on autocommitted connections, for requests that only read (GET, HEAD): each statement is its
    # own transaction, which spares the BEGIN and COMMIT round trips of a read.
    read_sessions: SessionFactory
    temporal: LazyTemporalClient
    mailer: Mailer
    webhook_inbox: WebhookInboxWriter


async def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_settings_dep(context: ContextDep) -> Settings:
    return context.settings


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


READ_METHODS = frozenset({"GET", "HEAD"})


async def get_session(request: Request, context: ContextDep) -> AsyncIterator[AsyncSession]:
    """The request's session: commits when the endpoint succeeds, rolls back when it raises.

    A read (GET, HEAD) gets an autocommitting session instead: its only writes are single-statement audit rows.
    """
    sessions = context.read_sessions if request.method in READ_METHODS else context.sessions
    async with sessions() as session, session.begin():
        yield session


async def get_transaction(context: ContextDep) -> AsyncIterator[AsyncSession]:
    """A session in one transaction whatever the method: for reads that must see one consistent snapshot."""
    async with context.sessions() as session, session.begin():
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]
TransactionDep = Annotated[AsyncSession, Depends(get_transaction)]


async def get_temporal(context: ContextDep) -> Client:
    try:
        return await context.temporal.get()
    except Exception as exc:  # Temporal unreachable: a clear 503 instead of a stack trace
        raise CedarError(503, "temporal_unavailable", "the workflow service is unavailable; retry later") from exc


TemporalDep = Annotated[Client, Depends(get_temporal)]


def get_identity(request: Request, settings: SettingsDep) -> IdentityService:
    """One identity service per app (the Supabase adapter holds a connection pool)."""
    service: IdentityService | None = getattr(request.app.state, "identity", None)
    if service is None:
        service = request.app.state.identity = create_identity_service(settings)
    return service


IdentityDep = Annotated[IdentityService, Depends(get_identity)]
