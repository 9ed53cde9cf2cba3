"""The fault suite (bench/faults.py) at CI's size: every fault, one at a time and then together, against a real
`./cedar run`, with short windows and outages."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from bench.faults import FAULTS, CedarRun, Options, suite

# Two defects this suite found in activities/ (outside the devstack; see docs/performance.md, "Faults"), accepted
# here only in exactly these shapes until they are fixed, so that every other loss or double still fails the test:
# a welcome email sent again when its activity dies between the SMTP server's acceptance and the commit of its
# communications row; and an enrollment whose family check, replayed after its worker died, finds the family that
# this very enrollment had just created.
KNOWN_DEFECTS = (
    re.compile(r"email enrollment:[0-9a-f-]+:welcome-(parent|teacher) \(sent\) reached the mail sink 2 times"),
    re.compile(
        r"enrollment [0-9a-f-]+ is failed, not (demo_scheduled|active) \(enrollment [0-9a-f-]+: "
        r"an enrollment cannot go from [a-z_]+ to awaiting_confirmation\)"
    ),
)


async def test_every_fault_is_survived_with_nothing_lost_or_doubled() -> None:
    # Not pytest's tmp_path: another pytest session may prune or lock down its folders under the live stack.
    directory = Path(tempfile.mkdtemp(prefix="cedar-faults-"))
    run = CedarRun.own(directory, api_processes=1)
    printed: list[str] = []
    options = Options(
        faults=list(FAULTS), together=True, families=3, concurrency=3, window=6, outage=6, settle_timeout=90
    )
    try:
        failures = await suite(run, options, out=printed.append)
        restarts = run.restarts()
    except Exception as error:
        raise AssertionError("".join(run.output[-30:])) from error
    finally:
        run.stop()
        shutil.rmtree(directory, ignore_errors=True)
    unexpected = [f for f in failures if not any(known.fullmatch(f) for known in KNOWN_DEFECTS)]
    assert unexpected == [], "\n".join(printed + failures)
    # Each killed child came back on its own, at least twice: alone and in the round of all faults (a child started
    # while a dependency is still down may exit and come back once more).
    killed = ("worker", "api", "postgres", "temporal")
    assert all(restarts[name] >= 2 for name in killed), restarts
    assert restarts["localstripe"] == restarts["smtp-sink"] == 0  # held down on purpose: no failure
    table = next(line for line in "\n".join(printed).splitlines() if line.startswith("| kill-worker |"))
    assert "none" not in table  # enrollments completed after the fault
