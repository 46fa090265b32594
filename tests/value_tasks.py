"""What the Value/Array tests run in other processes (importable by every child)."""

from __future__ import annotations

import os
from typing import Any


def add_many(counter: Any, times: int) -> int:
    """``counter.add(1)`` ``times`` times: parkit's race-free increment."""
    for _ in range(times):
        counter.add(1)
    return times


def increment_under_lock(counter: Any, times: int) -> None:
    """The stdlib's way, with parkit: hold ``get_lock()`` over the read and the write."""
    for _ in range(times):
        with counter.get_lock():
            counter.value += 1


def square_at(i: int, numbers: Any) -> None:
    """The tutorial's example: square ``numbers[i]`` in place."""
    numbers[i] = numbers[i] * numbers[i]


def fill(value: Any, numbers: Any) -> int:
    value.value = 3.5
    for i in range(len(numbers)):
        numbers[i] = i * 10
    return os.getpid()


def crash_after_add(counter: Any) -> None:
    counter.add(1)
    os._exit(3)


def hold_until(lock: Any, ready: Any, done: Any) -> None:
    with lock:
        ready.set()
        done.wait(60)
