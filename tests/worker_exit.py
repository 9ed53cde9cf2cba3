"""Runs a test's worker, tolerating one known race of the SDK's core at shutdown.

`finalize_shutdown` can find a poll task still holding the worker (temporalio/sdk-rust#1330) and raise "Cannot
finalize, expected 1 reference"; the worker has stopped by then, so a test's own outcome stands.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.worker import Worker

FINALIZE_RACE = "Cannot finalize, expected 1 reference"


@asynccontextmanager
async def running(worker: Worker) -> AsyncIterator[Worker]:
    try:
        async with worker:
            yield worker
    except ValueError as error:
        if not str(error).startswith(FINALIZE_RACE):
            raise
        logging.getLogger("tests").warning("worker finalize race at shutdown: %s", error)
