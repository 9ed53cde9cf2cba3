"""A worker inside the API process (``Settings.api_worker``), sharing the API's Temporal client.

Eager workflow start only happens when the client that starts a workflow has a worker of its own for that task
queue: the server then hands the first workflow task back in the start response, skipping a trip through the
task queue. The enrollment's first steps are local database activities, so they run right here as well. It polls
the enrollments' queue alone (``Settings.enrollment_queue``): billing's work stays in the worker processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from core.db import SessionFactory
from core.settings import Settings
from core.temporal import LazyTemporalClient
from workers.main import build_deps, build_worker

log = logging.getLogger("cedar.api.worker")


async def serve_beside_api(
    settings: Settings, sessions: SessionFactory, temporal: LazyTemporalClient, stop: asyncio.Event
) -> None:
    """Polls until ``stop`` is set; waits for Temporal when it is not up yet (the API serves meanwhile)."""
    while not stop.is_set():
        try:
            client = await temporal.get()
            break
        except Exception as exc:  # unreachable for now: the API reports it at /health; try again soon
            log.warning("in-process worker waiting for Temporal: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=2)
    else:
        return
    try:
        # The enrollments' queue only: billing and dunning never run in a process that answers requests.
        async with build_worker(client, build_deps(settings, sessions, client), settings.enrollment_queue):
            log.info("in-process worker polling task queue %s", settings.enrollment_queue)
            await stop.wait()
    except Exception:  # the worker processes still serve everything; the API goes on answering
        log.exception("the in-process worker stopped")
