"""Who a process is, and whether it still lives: pid plus start time.

A pid alone can be reused by an unrelated process once the first one is gone,
so where ``/proc`` exists a process is named by its pid *and* its start time
(field 22 of ``/proc/<pid>/stat``, in clock ticks since boot). Elsewhere the
start time is unknown (0) and only the pid is checked, with ``kill(pid, 0)``,
which counts a zombie as alive: this process's own ``multiprocessing`` children
are reaped first (``multiprocessing.active_children()``), so their death shows;
another process's zombie still counts as alive until its parent reaps it.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from typing import NamedTuple

from . import _platform

__all__ = ["PeerId", "describe_peer", "getpid", "identify", "is_alive"]

_HAVE_PROC = _platform.PROC

# This process's pid, kept by an at-fork hook: os.getpid() is a system call,
# and the hot paths of Pipe and of the sync objects asked for it several times
# per operation.
_pid = os.getpid()


def _forked() -> None:
    global _pid
    _pid = os.getpid()


_platform.after_fork_in_child(_forked)


def getpid() -> int:
    """``os.getpid()``, without the system call."""
    return _pid


class PeerId(NamedTuple):
    """A process as one end of a channel knows it."""

    pid: int
    #: Start time from ``/proc/<pid>/stat`` (clock ticks since boot), 0 if unknown.
    start: int
    #: ``time.monotonic_ns()`` when this was learned: the newest news wins.
    stamp: int


def _stat(pid: int) -> tuple[str, int] | None:
    """``(state, start time)`` of ``pid`` from ``/proc``; None if there is none."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after
    # its last ")"; what follows starts at field 3 (state).
    fields = raw.rpartition(b")")[2].split()
    try:
        return fields[0].decode("ascii", "replace"), int(fields[19])
    except (IndexError, ValueError):
        return None


def identify(pid: int) -> PeerId:
    """Name process ``pid`` now (start time 0 if it can't be read)."""
    stat = _stat(pid) if _HAVE_PROC else None
    return PeerId(pid, 0 if stat is None else stat[1], time.monotonic_ns())


def is_alive(peer: PeerId) -> bool:
    """Whether the process ``peer`` names is still running.

    Dead means: no such pid, a zombie (``Z``) or dead (``X``) entry, or a pid now
    used by a process that started at another time.
    """
    if peer.pid == _pid:
        return True
    if _HAVE_PROC:
        stat = _stat(peer.pid)
        if stat is None:
            return False
        state, start = stat
        return state not in ("Z", "X", "x") and peer.start in (0, start)
    # kill(pid, 0) counts a zombie as alive: reap this process's own finished
    # multiprocessing children first (as every Process.start() does), so that a
    # child killed while its parent waits on it (a lock it held) shows as dead.
    multiprocessing.active_children()
    try:
        os.kill(peer.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def describe_peer(peer: PeerId) -> str:
    """``"peer process 1234"``."""
    return f"peer process {peer.pid}"
