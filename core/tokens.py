"""Access tokens shaped like Supabase Auth's JWTs, so the API verifies both providers' tokens the same way,
and the built-in provider's rotating refresh tokens.

Access tokens are verified with the HS256 secret (ours, or the Supabase project's JWT secret) or, for Supabase's
asymmetric signing keys (RS256, ES256), with the project's JWKS. Refresh tokens are random strings stored only
as SHA-256 hashes; each use rotates the token within its family, and presenting an already-rotated token (a
stolen copy being replayed) revokes the whole family.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from sqlalchemy import exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from core.settings import Settings
from models import RefreshToken

ASYMMETRIC_ALGORITHMS = ("RS256", "ES256")
APP_ROLES = ("admin", "teacher", "parent")


class InvalidToken(Exception):
    pass


class InvalidRefreshToken(InvalidToken):
    def __init__(self, reason: str, *, reused: bool = False) -> None:
        super().__init__(reason)
        self.reused = reused


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    email: str
    app_role: str  # admin | teacher | parent (Supabase keeps it in app_metadata.role)
    expires_at: datetime
    session_id: uuid.UUID | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_access_token(
    settings: Settings, user_id: uuid.UUID, email: str, app_role: str, session_id: uuid.UUID | None = None
) -> str:
    """``session_id`` is the refresh-token family, so a logout also ends the access tokens of that session."""
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "email": email,
        "role": "authenticated",  # Supabase's Postgres role for signed-in users
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": int(now.timestamp()),
        "exp": int((now + settings.access_token_ttl).timestamp()),
        "app_metadata": {"provider": "email", "providers": ["email"], "role": app_role},
        "user_metadata": {},
        "aal": "aal1",
        "amr": [{"method": "password", "timestamp": int(now.timestamp())}],
        "session_id": str(session_id or uuid.uuid4()),
        "is_anonymous": False,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def accepted_issuers(settings: Settings) -> list[str]:
    issuers = [settings.jwt_issuer]
    if settings.supabase_url:
        issuers.append(f"{settings.supabase_url.rstrip('/')}/auth/v1")
    return issuers


def _claims_from(settings: Settings, token: str, key: Any, algorithms: list[str]) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            audience=settings.jwt_audience,
            issuer=accepted_issuers(settings),
            options={"require": ["sub", "exp", "aud", "iss"]},
        )
        app_role = (claims.get("app_metadata") or {}).get("role")
        if app_role not in APP_ROLES:
            raise InvalidToken("the token carries no Cedar role")
        session_id = claims.get("session_id")
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            email=claims.get("email", ""),
            app_role=app_role,
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            session_id=uuid.UUID(session_id) if session_id else None,
        )
    except (jwt.PyJWTError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc


def verify_access_token(settings: Settings, token: str, secret: str | None = None) -> AccessClaims:
    """Verifies an HS256 token (ours, or Supabase's legacy shared-secret tokens)."""
    return _claims_from(settings, token, secret or settings.supabase_jwt_secret or settings.jwt_secret, ["HS256"])


class JwksCache:
    """The signing keys of a Supabase project, fetched from its JWKS endpoint and kept for ``ttl_seconds``.

    An unknown ``kid`` (a key rotated in) refetches, but at most once per ``min_refetch_seconds`` so a flood of
    forged tokens cannot turn into a flood of requests to Supabase.
    """

    def __init__(self, url: str, *, ttl_seconds: float = 600, min_refetch_seconds: float = 30) -> None:
        self._url = url
        self._ttl = ttl_seconds
        self._min_refetch = min_refetch_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK:
        now = time.monotonic()
        stale = now - self._fetched_at > self._ttl
        if stale or (kid not in self._keys and now - self._fetched_at > self._min_refetch):
            async with self._lock:
                if time.monotonic() - self._fetched_at > min(self._ttl, self._min_refetch):
                    await self._fetch()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        if kid not in self._keys:
            raise InvalidToken("the token was signed with an unknown key")
        return self._keys[kid]

    async def _fetch(self) -> None:
        # Counted from the attempt: an unreachable JWKS endpoint is retried at the same pace, not per request,
        # and the keys already known keep working meanwhile.
        self._fetched_at = time.monotonic()
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(self._url)
                response.raise_for_status()
                key_set = jwt.PyJWKSet.from_dict(response.json())
        except (httpx.HTTPError, jwt.PyJWTError, ValueError) as exc:
            raise InvalidToken(f"the signing keys could not be fetched: {exc}") from exc
        self._keys = {key.key_id or "": key for key in key_set.keys}


class AccessTokenVerifier:
    """Verifies any access token the API accepts: HS256 with the shared secret, RS256/ES256 with the JWKS."""

    # A token verified once is not verified again for a while: decoding and checking the signature was a twentieth
    # of an authenticated read. Only expiry changes with time, so it is checked on every use; the recheck after a
    # few minutes bounds how long a token signed by a key since withdrawn from the JWKS stays accepted.
    RECHECK_SECONDS = 300.0
    MAX_REMEMBERED = 4096

    def __init__(self, settings: Settings, jwks: JwksCache | None = None) -> None:
        self._settings = settings
        url = settings.supabase_jwks_url or (
            f"{settings.supabase_url.rstrip('/')}/auth/v1/.well-known/jwks.json" if settings.supabase_url else None
        )
        self._jwks = jwks or (JwksCache(url) if url else None)
        self._verified: OrderedDict[str, tuple[AccessClaims, float]] = OrderedDict()

    async def verify(self, token: str) -> AccessClaims:
        remembered = self._verified.get(token)
        if remembered is not None and time.monotonic() < remembered[1]:
            claims = remembered[0]
            if claims.expires_at <= datetime.now(UTC):
                raise InvalidToken("Signature has expired")
            return claims
        claims = await self._verify_signed(token)
        self._verified[token] = (claims, time.monotonic() + self.RECHECK_SECONDS)
        if len(self._verified) > self.MAX_REMEMBERED:
            self._verified.popitem(last=False)
        return claims

    async def _verify_signed(self, token: str) -> AccessClaims:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        algorithm = header.get("alg")
        if algorithm == "HS256":
            return verify_access_token(self._settings, token)
        if algorithm in ASYMMETRIC_ALGORITHMS and self._jwks is not None:
            key = await self._jwks.key(header.get("kid"))
            if key.algorithm_name != algorithm:
                raise InvalidToken("the token's algorithm does not match its key")
            return _claims_from(self._settings, token, key, [algorithm])
        raise InvalidToken(f"tokens signed with {algorithm} are not accepted")


# --- refresh tokens (built-in provider) ---


@dataclass(frozen=True)
class IssuedRefreshToken:
    id: uuid.UUID
    token: str
    family_id: uuid.UUID
    user_id: uuid.UUID


async def issue_refresh_token(
    session: AsyncSession, settings: Settings, user_id: uuid.UUID, family_id: uuid.UUID | None = None
) -> IssuedRefreshToken:
    token = secrets.token_urlsafe(32)
    row = RefreshToken(
        user_id=user_id,
        family_id=family_id or uuid.uuid4(),
        token_hash=hash_token(token),
        expires_at=datetime.now(UTC) + settings.refresh_token_ttl,
    )
    session.add(row)
    await session.flush()
    return IssuedRefreshToken(row.id, token, row.family_id, user_id)


async def rotate_refresh_token(session: AsyncSession, settings: Settings, token: str) -> IssuedRefreshToken:
    """Spends ``token`` and returns its successor in the same family.

    A token that was already rotated is a replay: the whole family is revoked (the caller must commit that
    even though this raises) so neither the thief nor the victim can go on refreshing. Within
    ``refresh_token_reuse_grace`` of the rotation it is taken for a client's retry and answered with a sibling.
    """
    row = await session.scalar(
        select(RefreshToken).where(col(RefreshToken.token_hash) == hash_token(token)).with_for_update()
    )
    now = datetime.now(UTC)
    if row is None:
        raise InvalidRefreshToken("the refresh token is not known")
    if row.revoked_at is not None:
        if row.replaced_by_id is None:
            raise InvalidRefreshToken("the refresh token was revoked")
        if now - row.revoked_at <= settings.refresh_token_reuse_grace and await _family_is_live(session, row.family_id):
            # A retry of a refresh whose answer was lost: a sibling in the same family, not a breach.
            return await issue_refresh_token(session, settings, row.user_id, row.family_id)
        await revoke_refresh_family(session, row.family_id)
        raise InvalidRefreshToken("the refresh token was already used; the session is revoked", reused=True)
    if row.expires_at <= now:
        raise InvalidRefreshToken("the refresh token expired")
    successor = await issue_refresh_token(session, settings, row.user_id, row.family_id)
    row.revoked_at = now
    row.replaced_by_id = successor.id
    return successor


def _live_token_in(family_id: Any) -> Any:
    return exists().where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))


async def _family_is_live(session: AsyncSession, family_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(_live_token_in(family_id))))


async def revoke_refresh_family(session: AsyncSession, family_id: uuid.UUID) -> None:
    await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.family_id) == family_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


async def revoke_user_refresh_tokens(session: AsyncSession, user_id: uuid.UUID) -> None:
    """Ends every session of a user (a password was reset or set)."""
    await session.execute(
        update(RefreshToken)
        .where(col(RefreshToken.user_id) == user_id, col(RefreshToken.revoked_at).is_(None))
        .values(revoked_at=datetime.now(UTC))
    )


def session_revoked_clause(session_id: Any) -> Any:
    """True when ``session_id`` (a value or a bind parameter) is a built-in session whose refresh tokens are all
    revoked (logged out); false for NULL.

    Tokens of sessions we never stored (Supabase's, or minted directly in tests) are not affected.
    """
    known = exists().where(col(RefreshToken.family_id) == session_id)
    return known & ~_live_token_in(session_id)
