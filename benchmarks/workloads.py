"""Worker functions for the benchmark suite.

They live in an importable module so that every library ships them the same way
(by reference), whatever its serializer.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterator
from typing import Any

ARRAY_BYTES = 4 << 20  # workload C: 4 MiB per array


def square(x: int) -> int:
    return x * x


def spin(iterations: int) -> int:
    """Pure-Python CPU work; the runner calibrates ``iterations`` to ~40 ms."""
    total = 0
    for i in range(iterations):
        total += i * i % 7
    return total


def spin_timed(iterations: int) -> tuple[int, float, float]:
    """:func:`spin`, returning (worker pid, start, end) on the system-wide monotonic clock."""
    start = time.monotonic()
    spin(iterations)
    return os.getpid(), start, time.monotonic()


def array_sum(a: Any) -> float:
    return float(a.sum())


def make_array(seed: int) -> Any:
    import numpy as np

    return np.full(ARRAY_BYTES // 8, float(seed))


def shape_of(a: Any) -> tuple[int, ...]:
    """Touches nothing: what it costs is handing ``a`` over."""
    return tuple(a.shape)


def counted(counter: list[int]) -> Iterator[int]:
    """An endless input that counts how many items were pulled from it."""
    for i in itertools.count():
        counter[0] = i + 1
        yield i


def square_chunk(xs: list[int]) -> list[int]:
    """``square`` over a hand-made chunk (the DASK workload's hand-batched ``client.map``)."""
    return [x * x for x in xs]
