"""The one way a test waits for something to happen: poll a probe until it answers, or fail saying what never came.

    account = await eventually(subscribed, what="the first subscription")
    body = await eventually(fetch, until=lambda body: body["state"] == "active", what="the enrollment active")
    eventually_sync(lambda: gone(pid), timeout=5, what=f"process {pid} gone")

By default the probe's first truthy answer is returned; with ``until``, its first answer that ``until`` accepts (so an
empty answer can be the awaited one, and a timeout shows the whole last answer rather than a bare ``None``).
Exceptions from the probe are not swallowed: a probe that expects some (a service still starting) catches them.
"""

from __future__ import annotations

import asyncio
import reprlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar, overload

T = TypeVar("T")

TIMEOUT = 20.0
INTERVAL = 0.1

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 200
_repr.maxlist = _repr.maxdict = _repr.maxtuple = 20
_repr.maxlevel = 3
LAST_SEEN_CHARS = 3000


class NeverHappened(AssertionError):
    """What was awaited did not come before the timeout."""


def _timed_out(what: str, timeout: float, last: object) -> NeverHappened:
    seen = _repr.repr(last)
    if len(seen) > LAST_SEEN_CHARS:
        seen = seen[:LAST_SEEN_CHARS] + "..."
    return NeverHappened(f"timed out after {timeout:g}s waiting for {what}; last seen: {seen}")


@overload
async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = ..., what: str, interval: float = ...
) -> T: ...
@overload
async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], object],
    timeout: float = ...,
    what: str,
    interval: float = ...,
) -> T: ...
async def eventually(
    probe: Callable[[], Awaitable[T]],
    *,
    until: Callable[[T], object] = bool,
    timeout: float = TIMEOUT,
    what: str,
    interval: float = INTERVAL,
) -> T:
    """Await ``probe()`` every ``interval`` seconds until ``until`` accepts its answer (by default: until it is
    truthy), and return that answer; after ``timeout`` seconds raise :class:`NeverHappened` (an
    ``AssertionError``) naming ``what`` and the last answer seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, value)
        await asyncio.sleep(interval)


@overload
def eventually_sync(probe: Callable[[], T | None], *, timeout: float = ..., what: str, interval: float = ...) -> T: ...
@overload
def eventually_sync(
    probe: Callable[[], T],
    *,
    until: Callable[[T], object],
    timeout: float = ...,
    what: str,
    interval: float = ...,
) -> T: ...
def eventually_sync(
    probe: Callable[[], T],
    *,
    until: Callable[[T], object] = bool,
    timeout: float = TIMEOUT,
    what: str,
    interval: float = INTERVAL,
) -> T:
    """:func:`eventually` for the few synchronous tests (processes and sockets, no event loop)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if until(value):
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, value)
        time.sleep(interval)
