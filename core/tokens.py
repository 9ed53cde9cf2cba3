"""Access tokens shaped like Supabase Auth's JWTs, so the API verifies both providers' tokens the same way."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt

from core.settings import Settings


class InvalidToken(Exception):
    pass


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    email: str
    app_role: str  # admin | teacher | parent (Supabase keeps it in app_metadata.role)
    expires_at: datetime


def issue_access_token(settings: Settings, user_id: uuid.UUID, email: str, app_role: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "email": email,
        "role": "authenticated",  # Supabase's Postgres role for signed-in users
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "iat": int(now.timestamp()),
        "exp": int((now + settings.access_token_ttl).timestamp()),
        "app_metadata": {"provider": "email", "role": app_role},
        "user_metadata": {},
        "session_id": str(uuid.uuid4()),
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


def verify_access_token(settings: Settings, token: str, secret: str | None = None) -> AccessClaims:
    try:
        claims = jwt.decode(
            token,
            secret or settings.supabase_jwt_secret or settings.jwt_secret,
            algorithms=["HS256"],
            audience=settings.jwt_audience,
            options={"require": ["sub", "exp", "aud"]},
        )
        app_role = (claims.get("app_metadata") or {}).get("role")
        if app_role not in ("admin", "teacher", "parent"):
            raise InvalidToken("the token carries no Cedar role")
        return AccessClaims(
            user_id=uuid.UUID(claims["sub"]),
            email=claims.get("email", ""),
            app_role=app_role,
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except (jwt.PyJWTError, ValueError) as exc:
        raise InvalidToken(str(exc)) from exc
