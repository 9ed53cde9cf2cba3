"""Schemathesis against the running app (ASGI, in-process): every operation of the OpenAPI document, fuzzed with
generated requests as an admin, a teacher and a parent, must never answer a 5xx (``not_a_server_error``).

Examples are bounded per operation so the whole run stays well under a minute; ``derandomize`` makes a failure
reproducible run after run.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import TypeVar

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.result import Err, Ok
from schemathesis.python.asgi import shutdown_lifespans

from api.main import create_app
from core.db import create_engine, create_session_factory, transaction
from core.settings import Settings
from core.tokens import issue_access_token
from devstack.localstripe import LocalStripe
from devstack.postgres import EmbeddedPostgres
from devstack.smtp_sink import SmtpSink
from devstack.temporal import TemporalDevServer
from models import Parent, Role, Teacher, User

# The run's budget of generated requests, shared by every operation and role: more routes mean fewer examples
# each (never under 4), so the run stays under a minute as the API grows.
REQUEST_BUDGET = 800
MIN_EXAMPLES, MAX_EXAMPLES = 4, 15


@pytest.fixture(scope="module")
def fuzz_settings(
    postgres: EmbeddedPostgres,
    template_db: str,
    temporal_server: TemporalDevServer,
    localstripe: LocalStripe,
    smtp_sink: SmtpSink,
) -> Iterator[Settings]:
    name = f"fuzz_{uuid.uuid4().hex[:12]}"
    postgres.create_database(name, template=template_db)
    yield Settings(
        environment="test",
        database_url=postgres.url(name),
        # One connection and no overflow: an operation that takes a second connection while holding one waits on
        # itself, times out and answers 500, so the fuzz run also proves every route needs one connection at a time.
        db_pool_size=1,
        db_max_overflow=0,
        db_pool_timeout=timedelta(seconds=5),
        temporal_address=temporal_server.address,
        task_queue=f"tq-fuzz-{uuid.uuid4()}",
        stripe_api_base=localstripe.api_base,
        smtp_port=smtp_sink.smtp_port,
        smtp_timeout=timedelta(seconds=3),
        log_level="WARNING",
    )
    shutdown_lifespans()  # schemathesis keeps the app's lifespan (its engine) running until told
    postgres.drop_database(name)


async def _bearer_tokens(settings: Settings) -> dict[str, str]:
    engine = create_engine(settings)
    async with transaction(create_session_factory(engine)) as session:
        users = [User(email=f"fuzz-{role}@cedar.test", role=role) for role in Role]
        session.add_all(users)
        await session.flush()
        for user in users:
            if user.role == Role.parent:
                session.add(
                    Parent(user_id=user.id, first_name="F", last_name="Uzz", email=user.email, phone="604-555-0100")
                )
            elif user.role == Role.teacher:
                session.add(
                    Teacher(
                        user_id=user.id,
                        first_name="F",
                        last_name="Uzz",
                        display_name="F U",
                        email=user.email,
                        instruments=["piano"],
                    )
                )
    await engine.dispose()
    return {str(u.role): issue_access_token(settings, u.id, u.email, u.role) for u in users}


def fuzz_operation(
    operation: schemathesis.APIOperation, role: str, token: str, examples: int, failures: list[str]
) -> None:
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=examples,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def fuzz(case: schemathesis.Case) -> None:
        # Collected, not raised: no shrinking, and one report listing every operation that failed.
        try:
            response = case.call(headers=headers)
        except Exception as crash:  # the in-process client re-raises what the app did not handle: a 500
            failures.append(
                f"{operation.label} as {role}: {type(crash).__name__}: {str(crash)[:300]}\n"
                f"{case.as_curl_command(headers)}"
            )
            return
        try:
            case.validate_response(response, checks=[not_a_server_error])
        except (AssertionError, FailureGroup) as failure:
            failures.append(
                f"{operation.label} as {role}: {response.status_code}\n"
                f"{case.as_curl_command(headers)}\n{str(failure)[:800]}"
            )

    fuzz()


T = TypeVar("T")
E = TypeVar("E", bound=Exception)


def _operation(result: Ok[T] | Err[E]) -> T:
    """An operation of the schema; one the schema describes wrongly fails the test with the schema's own error."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok()


async def test_no_operation_answers_a_server_error(fuzz_settings: Settings) -> None:
    tokens = await _bearer_tokens(fuzz_settings)
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(fuzz_settings))
    operations = [_operation(result) for result in schema.get_all_operations()]
    assert len(operations) >= 10, "the OpenAPI document lists too few operations: is the schema being served?"
    examples = min(MAX_EXAMPLES, max(MIN_EXAMPLES, REQUEST_BUDGET // (len(operations) * len(tokens))))
    failures: list[str] = []
    for operation in operations:
        for role, token in tokens.items():
            # Hypothesis runs synchronously; the app runs on schemathesis's own event-loop thread.
            await asyncio.to_thread(fuzz_operation, operation, role, token, examples, failures)
    assert not failures, f"{len(failures)} server error(s):\n\n" + "\n\n".join(failures[:10])
