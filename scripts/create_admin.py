"""The school's first admin, in any environment: ``python -m scripts.create_admin --email office@school.ca``.

The email comes from ``--email``, else ``CEDAR_BOOTSTRAP_ADMIN_EMAIL``, else a prompt. The account is made through
the identity provider (built-in or Supabase) with no password; the command prints a one-time set-password link
(valid ``CEDAR_SET_PASSWORD_TTL``) for the admin to open. Run again for the same email, it makes no second account
and prints a fresh link (the older one stops working).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.db import create_engine, create_session_factory, transaction
from core.identity import IdentityProvider, close_open_links, create_identity_service
from core.settings import Settings
from models import Role, TokenPurpose, User


class BootstrapError(ValueError):
    pass


@dataclass(frozen=True)
class AdminLink:
    email: str
    created: bool
    link: str


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    local, _, domain = email.partition("@")
    if not local or "." not in domain or any(c.isspace() for c in email):
        raise BootstrapError(f"not an email address: {email!r}")
    return email


async def create_admin(session: AsyncSession, identity: IdentityProvider, email: str) -> AdminLink:
    email = normalize_email(email)
    account = await identity.ensure_account(session, email, Role.admin)
    user = await session.scalar(select(User).where(col(User.id) == account.user_id))
    assert user is not None
    # The address may belong to a parent or teacher: promoting them silently would hand them the school.
    if user.role != Role.admin:
        raise BootstrapError(f"{email} already has a {user.role} account; use another address for the admin")
    if not user.is_active:
        raise BootstrapError(f"{email} is a deactivated admin; reactivate it through the API instead")
    await close_open_links(session, user.id, TokenPurpose.set_password)
    link = await identity.create_password_link(session, user.id, TokenPurpose.set_password)
    return AdminLink(email, account.created, link)


def _email(given: str | None, settings: Settings) -> str:
    email = given or settings.bootstrap_admin_email
    if email:
        return email
    if not sys.stdin.isatty():
        raise BootstrapError("no email: pass --email or set CEDAR_BOOTSTRAP_ADMIN_EMAIL")
    return input("Email of the first admin: ")


async def _run(settings: Settings, email: str) -> AdminLink:
    engine = create_engine(settings)
    try:
        async with transaction(create_session_factory(engine)) as session:
            return await create_admin(session, create_identity_service(settings), email)
    finally:
        await engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.create_admin", description="Create the school's first admin and print a link."
    )
    parser.add_argument("--email", help="the admin's email (default: CEDAR_BOOTSTRAP_ADMIN_EMAIL, else asked)")
    args = parser.parse_args(argv)
    settings = Settings()
    try:
        made = asyncio.run(_run(settings, _email(args.email, settings)))
    except BootstrapError as error:
        print(f"create-admin: {error}", file=sys.stderr)
        return 2
    what = "created" if made.created else "already exists; here is a new link (the previous one no longer works)"
    print(f"admin {made.email} {what}")
    print(f"set the password within {settings.set_password_ttl} at:\n{made.link}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
