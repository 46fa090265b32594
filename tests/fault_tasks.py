"""Functions that the fault matrix (tests/faults/) runs in workers.

Importable by every child (the tests directory is on ``sys.path`` of each), so
they travel by reference. Each fault is one named action; :func:`act` runs item
``("ok", i)`` as ``i * 10`` and any other item as its fault, so that one script
of items can put a single fault among ordinary ones.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
import time
from typing import Any, NoReturn

import hostile

#: The value of an ordinary item ``i``.
SCALE = 10


def sigterm_self() -> NoReturn:
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(60)
    raise AssertionError("unreachable")


def exceed_memory_limit() -> NoReturn:
    """Lower this process's address-space limit, then allocate past it.

    The soft limit comes back before returning, so the worker serves on: what a
    memory limit in a container turns into inside CPython is a ``MemoryError``.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as statm:
        in_use = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (in_use + (64 << 20), hard))
    try:
        hog = bytearray(1 << 30)
        raise AssertionError(f"allocated {len(hog)} bytes past the limit")
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def return_bytes(nbytes: int) -> bytes:
    return b"\x5a" * nbytes


def return_unpicklable_lambda() -> Any:
    # A generator: not even cloudpickle can carry one.
    return (i for i in range(3))


def act(item: tuple[str, Any]) -> Any:
    """``("ok", i)`` returns ``i * SCALE``; ``(name, args)`` calls that fault."""
    action, value = item
    if action == "ok":
        return value * SCALE
    fn = globals().get(action) or getattr(hostile, action)
    return fn(*value)


def act2(action: str, value: Any) -> Any:
    """:func:`act` with its two fields as two arguments (for ``starmap``)."""
    return act((action, value))


def exit_code_of(code: Any) -> NoReturn:
    sys.exit(code)


def nap(seconds: float) -> None:
    """A slow item that ends: what a thread backend's "stuck" item has to be, since
    a thread cannot be stopped and the test process must not keep it."""
    time.sleep(seconds)


def send_huge(conn: Any) -> None:
    """Send a frame far larger than a pipe's buffer: the writer blocks mid-frame."""
    conn.send(b"x" * (64 << 20))


def touch_then_exit(shared: Any, code: int) -> None:
    """Write into a shared array, then die without any clean-up."""
    shared[0] = 1.0
    os._exit(code)
