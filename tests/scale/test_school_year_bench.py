"""The school-year simulator (bench/school_year.py) at a tiny size on a real `./cedar run`: every path of the year
runs (a decline paid with a new card, one never paid and cancelled by dunning, a cancellation), nothing is lost or
doubled, and the cost per family-year is printed for each process."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from bench.faults import CedarRun
from bench.school_year import COMPONENTS, Options, school_year, stack_env


async def test_a_tiny_school_year_passes_its_checks_and_prints_its_figures() -> None:
    # Not pytest's tmp_path: another pytest session may prune its folders under the live stack.
    directory = Path(tempfile.mkdtemp(prefix="cedar-year-"))
    options = Options(families=4, months=3, concurrency=4, settle_timeout=150)
    run = CedarRun.own(directory, api_processes=2, extra_env=stack_env(directory, options.months))
    printed: list[str] = []
    try:
        failures = await school_year(run, options, out=printed.append)
    except Exception as error:
        raise AssertionError("".join(run.output[-30:])) from error
    finally:
        run.stop()
        shutil.rmtree(directory, ignore_errors=True)
    output = "\n".join(printed)
    assert failures == [], "\n".join([output, *failures])
    figures = dict(re.findall(r"^\| (.+?) \| ([\d,.]+) \|$", output, re.MULTILINE))
    for component in COMPONENTS:
        assert f"CPU s, {component}" in figures, output
    for server in ("api", "workers", "temporal", "postgres"):
        assert float(figures[f"CPU s, {server}"].replace(",", "")) > 0, output
    assert float(figures["Temporal history events"].replace(",", "")) > 0, output
    assert float(figures["database bytes"].replace(",", "")) > 0, output
    events = next(line for line in printed if line.startswith("events: "))
    for happened in ("declined, then paid with a new card 1", "declined, never paid 1", "cancelled 1", "enrolled 4"):
        assert happened in events, events
