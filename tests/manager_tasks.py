"""What the manager tests run in other processes (importable by every child)."""

from __future__ import annotations

import os
import threading
from typing import Any


class Math:
    """A class a manager serves (``types=[Math]``)."""

    def __init__(self, base: int = 0) -> None:
        self.base = base

    def add(self, x: int, y: int) -> int:
        return self.base + x + y


class Marker:
    """Unpickling it creates the file at ``path``: proof that a peer unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def record(i: int, d: Any, items: Any) -> int:
    """Store ``i*i`` under ``i`` in the shared dict, append ``i`` to the shared list."""
    d[i] = i * i
    items.append(i)
    return os.getpid()


def add_under_lock(lock: Any, value: Any, times: int) -> None:
    """``value.value += 1`` ``times`` times, each under the manager's lock."""
    for _ in range(times):
        with lock:
            value.value = value.value + 1


def put_pid(q: Any) -> None:
    q.put(os.getpid())


class Gate:
    """A class a manager serves whose :meth:`wait` never returns."""

    def wait(self, marker: str) -> None:
        """Create the file ``marker`` (the call is in the server now), then wait for ever."""
        open(marker, "w").close()
        threading.Event().wait()
