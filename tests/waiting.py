"""The one way a test waits for something to happen: poll a probe until it answers, or fail saying what never came.

    account = await eventually(subscribed, what="the first subscription")
    eventually_sync(lambda: port_open(port), timeout=60, what="api.serve answering")

A probe returns a truthy value once the condition holds (that value is returned) and anything falsy before. When an
empty answer is a valid answer too, return it wrapped, e.g. ``(rows,)``. Exceptions from the probe are not
swallowed: a probe that expects some (a service still starting) catches them itself.
"""

from __future__ import annotations

import asyncio
import reprlib
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

TIMEOUT = 20.0
INTERVAL = 0.1

_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 400
_repr.maxlist = _repr.maxdict = _repr.maxtuple = 20
_repr.maxlevel = 4


class NeverHappened(AssertionError):
    """What was awaited did not come before the timeout."""


def _timed_out(what: str, timeout: float, last: object) -> NeverHappened:
    return NeverHappened(f"timed out after {timeout:g}s waiting for {what}; last seen: {_repr.repr(last)}")


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = TIMEOUT,
    what: str,
    interval: float = INTERVAL,
) -> T:
    """Await ``probe()`` every ``interval`` seconds until it returns something truthy, and return that; raise
    :class:`NeverHappened` (an ``AssertionError``) naming ``what`` and the last value seen after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, value)
        await asyncio.sleep(interval)


def eventually_sync(
    probe: Callable[[], T | None], *, timeout: float = TIMEOUT, what: str, interval: float = INTERVAL
) -> T:
    """:func:`eventually` for the few synchronous tests (processes and sockets, no event loop)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise _timed_out(what, timeout, value)
        time.sleep(interval)
