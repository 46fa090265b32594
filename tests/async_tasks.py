"""Functions that the asyncio tests run in workers (importable by every child)."""

from __future__ import annotations

import os
from pathlib import Path

import parkit

#: Seconds a worker waits for an event that the test sets (or never sets):
#: long enough to be "forever" for a test, short enough that nothing hangs.
WAIT_S = 60.0


def wait_for(release: parkit.Event) -> bool:
    """Whether ``release`` was set within :data:`WAIT_S` (the parent sets it)."""
    return release.wait(WAIT_S)


def start_then_block(args: tuple[int, str, parkit.Event]) -> int:
    """Write ``<folder>/started-<i>`` (holding this pid), wait on ``never``, then
    write ``<folder>/finished-<i>``: a stopped item leaves no ``finished`` file."""
    i, folder, never = args
    (Path(folder) / f"started-{i}").write_text(str(os.getpid()))
    never.wait(WAIT_S)
    (Path(folder) / f"finished-{i}").write_text(str(os.getpid()))
    return i
