"""One logging setup for every process (API, worker, tools)."""

from __future__ import annotations

import logging

from core.settings import Settings


def configure_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    # Temporal's worker logs every poll at DEBUG; keep it quiet unless asked.
    logging.getLogger("temporalio").setLevel(max(logging.INFO, logging.getLogger().level))
