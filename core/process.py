"""How processes that used a Temporal client end."""

from __future__ import annotations

import os
import sys
from typing import NoReturn


def exit_after(code: int | None) -> NoReturn:
    """Exit a process that used a Temporal client without running interpreter teardown.

    The client's Rust runtime keeps threads that may still touch the GIL while CPython finalizes, which aborts
    the process now and then (``PyGILState_Release: thread state ... must be current``; temporalio/sdk-python#300)
    after its work is done. Flushing and leaving with ``os._exit`` keeps the exit status the work earned.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
