"""Every call the API makes to Temporal is bounded: past its deadline a request answers 504, and while Temporal
cannot be reached 503, in the API's one error shape, instead of holding the request open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.client import RPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import CedarError, retry_after_header


@asynccontextmanager
async def bounded(
    timeout: timedelta,  # noqa: ASYNC109 (this is the timeout scope the rule asks callers to use)
    what: str,
    *,
    retry_after: timedelta | None = None,
) -> AsyncIterator[None]:
    """Bounds the Temporal calls made inside to ``timeout`` in all; each also passes ``rpc_timeout=timeout``.

    The SDK repeats some calls with a fresh ``rpc_timeout`` each (an update polls until its outcome), so only the
    bound around them all caps the request. ``what`` names the workflow for the caller. ``retry_after`` is for
    calls that are harmless to resend (reads): the 504 or 503 then carries it as ``Retry-After``; without it a
    504 warns that the change may still be made.
    """
    headers = retry_after_header(retry_after) if retry_after is not None else None
    try:
        async with asyncio.timeout(timeout.total_seconds()):
            yield
    except (TimeoutError, RPCTimeoutOrCancelledError) as error:
        raise _timed_out(what, headers) from error
    except RPCError as error:
        if error.status == RPCStatusCode.DEADLINE_EXCEEDED:
            raise _timed_out(what, headers) from error
        if error.status == RPCStatusCode.UNAVAILABLE:
            detail = f"{what} cannot be reached right now; retry shortly"
            raise CedarError(503, "temporal_unavailable", detail, headers=headers) from error
        raise


def _timed_out(what: str, headers: dict[str, str] | None) -> CedarError:
    if headers is not None:
        return CedarError(504, "timeout", f"{what} did not answer in time; retry shortly", headers=headers)
    detail = f"{what} did not answer in time; the change may still be made, so check before sending it again"
    return CedarError(504, "timeout", detail)
