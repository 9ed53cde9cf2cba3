"""Access tokens shaped exactly like Supabase's: HS256 with the project's JWT secret, RS256/ES256 through a JWKS
served by a local HTTP server, and the ways a token must fail."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from api.main import create_app
from core.db import SessionFactory, transaction
from core.settings import Settings
from core.tokens import AccessTokenVerifier, InvalidToken, JwksCache
from devstack.ports import free_port
from models import Role, User
from tests.auth.conftest import AUTH
from tests.auth.supabase_fake import PROJECT_JWT_SECRET, load, supabase_settings

RECORDED_TOKEN = load("token_password_ok")["response"]["body"]["access_token"]


def supabase_claims(**changes: Any) -> dict[str, Any]:
    """The claims of a token Supabase issued (from the recording), re-stamped to be valid now."""
    claims: dict[str, Any] = jwt.decode(RECORDED_TOKEN, options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now, exp=now + 3600, amr=[{"method": "password", "timestamp": now}])
    claims.update(changes)
    return claims


@dataclass
class Jwks:
    """A Supabase project's /auth/v1/.well-known/jwks.json, served over real HTTP on a local port."""

    url: str
    keys: dict[str, Any] = field(default_factory=dict)  # kid -> private key
    hits: int = 0

    def add(self, kid: str, private_key: Any) -> None:
        self.keys[kid] = private_key

    def document(self) -> dict[str, Any]:
        published = []
        for kid, key in self.keys.items():
            is_ec = isinstance(key, ec.EllipticCurvePrivateKey)
            jwk = (ECAlgorithm if is_ec else RSAAlgorithm).to_jwk(key.public_key(), as_dict=True)
            published.append(
                {
                    **jwk,
                    "kid": kid,
                    "alg": "ES256" if is_ec else "RS256",
                    "use": "sig",
                    "key_ops": ["verify"],
                    "ext": True,
                }
            )
        return {"keys": published}

    def sign(self, kid: str, claims: dict[str, Any]) -> str:
        key = self.keys[kid]
        algorithm = "ES256" if isinstance(key, ec.EllipticCurvePrivateKey) else "RS256"
        return jwt.encode(claims, key, algorithm=algorithm, headers={"kid": kid, "typ": "JWT"})


@pytest.fixture
async def jwks() -> AsyncIterator[Jwks]:
    port = free_port()
    served = Jwks(f"http://127.0.0.1:{port}/auth/v1/.well-known/jwks.json")

    async def handler(_: web.Request) -> web.Response:
        served.hits += 1
        return web.json_response(served.document())

    app = web.Application()
    app.router.add_get("/auth/v1/.well-known/jwks.json", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield served
    await runner.cleanup()


@pytest.fixture
def project_settings(make_settings: Callable[..., Settings], jwks: Jwks) -> Settings:
    return supabase_settings(make_settings, supabase_jwks_url=jwks.url)


async def test_a_supabase_hs256_token_is_verified_with_the_project_secret(project_settings: Settings) -> None:
    token = jwt.encode(supabase_claims(), PROJECT_JWT_SECRET, algorithm="HS256")
    claims = await AccessTokenVerifier(project_settings).verify(token)
    recorded = supabase_claims()
    assert str(claims.user_id) == recorded["sub"]
    assert claims.app_role == "parent"
    assert str(claims.session_id) == recorded["session_id"]
    assert claims.email == recorded["email"]


@pytest.mark.parametrize(
    ("description", "make_token"),
    [
        ("another project's secret", lambda: jwt.encode(supabase_claims(), "x" * 40, algorithm="HS256")),
        ("expired", lambda: jwt.encode(supabase_claims(exp=int(time.time()) - 10), PROJECT_JWT_SECRET, "HS256")),
        (
            "another issuer",
            lambda: jwt.encode(supabase_claims(iss="https://evil.example/auth/v1"), PROJECT_JWT_SECRET, "HS256"),
        ),
        (
            "the anon role",
            lambda: jwt.encode(supabase_claims(app_metadata={"provider": "email"}), PROJECT_JWT_SECRET, "HS256"),
        ),
        ("another audience", lambda: jwt.encode(supabase_claims(aud="anon"), PROJECT_JWT_SECRET, "HS256")),
        ("unsigned", lambda: jwt.encode(supabase_claims(), "", algorithm="none")),
        ("not a JWT", lambda: "not-a-jwt"),
    ],
)
async def test_tokens_that_must_fail(
    project_settings: Settings, description: str, make_token: Callable[[], str]
) -> None:
    with pytest.raises(InvalidToken):
        await AccessTokenVerifier(project_settings).verify(make_token())


@pytest.mark.parametrize("algorithm", ["RS256", "ES256"])
async def test_asymmetric_tokens_are_verified_through_the_jwks(
    project_settings: Settings, jwks: Jwks, algorithm: str
) -> None:
    key = rsa.generate_private_key(65537, 2048) if algorithm == "RS256" else ec.generate_private_key(ec.SECP256R1())
    kid = str(uuid.uuid4())
    jwks.add(kid, key)
    verifier = AccessTokenVerifier(project_settings)
    for _ in range(3):
        claims = await verifier.verify(jwks.sign(kid, supabase_claims()))
        assert claims.app_role == "parent"
    assert jwks.hits == 1  # the keys are cached, not fetched per request

    other = ec.generate_private_key(ec.SECP256R1())
    forged = jwt.encode(supabase_claims(), other, algorithm="ES256", headers={"kid": kid})
    with pytest.raises(InvalidToken):
        await verifier.verify(forged)


async def test_a_rotated_in_key_is_fetched_and_an_unknown_one_refused(project_settings: Settings, jwks: Jwks) -> None:
    jwks.add("old", ec.generate_private_key(ec.SECP256R1()))
    verifier = AccessTokenVerifier(project_settings, JwksCache(jwks.url, min_refetch_seconds=0))
    await verifier.verify(jwks.sign("old", supabase_claims()))
    jwks.add("new", rsa.generate_private_key(65537, 2048))
    assert (await verifier.verify(jwks.sign("new", supabase_claims()))).app_role == "parent"
    stranger = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(InvalidToken):
        await verifier.verify(jwt.encode(supabase_claims(), stranger, algorithm="ES256", headers={"kid": "nope"}))


async def test_a_key_used_with_another_algorithm_is_refused(project_settings: Settings, jwks: Jwks) -> None:
    rsa_key = rsa.generate_private_key(65537, 2048)
    jwks.add("rsa", rsa_key)
    # Claims an EC algorithm while naming the RSA key: refused before any signature check could be confused.
    token = jwt.encode(
        supabase_claims(), ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": "rsa"}
    )
    with pytest.raises(InvalidToken):
        await AccessTokenVerifier(project_settings).verify(token)


async def test_the_api_accepts_a_supabase_token_for_a_mirrored_account(
    project_settings: Settings, jwks: Jwks, sessions: SessionFactory
) -> None:
    claims = supabase_claims()
    async with transaction(sessions) as session:
        session.add(User(id=uuid.uuid4(), email=claims["email"], role=Role.parent, external_id=claims["sub"]))
    jwks.add("k1", ec.generate_private_key(ec.SECP256R1()))
    app = create_app(project_settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cedar.test") as client,
    ):
        for token in (jwks.sign("k1", claims), jwt.encode(claims, PROJECT_JWT_SECRET, algorithm="HS256")):
            me = await client.get(f"{AUTH}/me", headers={"Authorization": f"Bearer {token}"})
            assert me.status_code == 200, me.text
            assert me.json()["email"] == claims["email"]
            assert me.json()["role"] == "parent"


async def test_a_remembered_token_is_still_refused_once_it_expires(project_settings: Settings, jwks: Jwks) -> None:
    jwks.add("k", ec.generate_private_key(ec.SECP256R1()))
    verifier = AccessTokenVerifier(project_settings)
    token = jwks.sign("k", supabase_claims(exp=int(time.time()) + 2))
    first = await verifier.verify(token)

    async def verify_again(token: str) -> Any:
        raise AssertionError("a remembered token had its signature checked again")

    verifier._verify_signed = verify_again  # type: ignore[method-assign]
    assert await verifier.verify(token) == first
    # Real time has to pass the token's expiry: the verifier reads the wall clock, nothing else changes.
    await asyncio.sleep(max(0.0, first.expires_at.timestamp() - time.time()) + 0.05)
    with pytest.raises(InvalidToken, match="expired"):
        await verifier.verify(token)
