"""Quick start: run a function over data in parallel, and get a worker's error back.

Shows the two promises parkit is built on:

1. ``parkit.map`` runs a function over data on all cores and returns the values
   in input order, exactly what the serial loop returns;
2. an exception raised in a worker arrives in the parent as the *same* exception
   the serial loop would raise (the lowest failing item's), with the worker's
   frames in its traceback and a note naming the worker and the item; with
   ``errors="return"`` every item gets its value or its exception instead.

Run it with ``bash scripts/demo`` (installs parkit first) or
``python examples/quickstart.py``.
"""

from __future__ import annotations

import os
import traceback

import parkit


def collatz_steps(n: int) -> int:
    """Steps of the Collatz sequence from ``n`` down to 1 (some CPU work)."""
    steps = 0
    while n != 1:
        n = 3 * n + 1 if n % 2 else n // 2
        steps += 1
    return steps


def parse_row(row: str) -> int:
    """Parse ``"<id>: <value>"``; rows with a bad value raise ValueError."""
    ident, _, value = row.partition(":")
    if not value.strip().isdigit():
        raise ValueError(f"bad input row {ident.strip()}: {value.strip()!r}")
    return int(value)


def main() -> None:
    data = [27, 97, 871, 6171, 77031, 837799]
    steps = parkit.map(collatz_steps, data)
    for n, s in zip(data, steps, strict=True):
        print(f"collatz_steps({n}) = {s}")
    assert steps == [collatz_steps(n) for n in data]  # parallel == serial

    rows = ["1: 10", "2: 20", "17: ???", "18: 40", "19: ?"]
    print("\nerrors='return':", parkit.map(parse_row, rows, errors="return"))

    print(f"\nA worker's exception, as the parent (pid {os.getpid()}) sees it:")
    try:
        parkit.map(parse_row, rows, timeout=30)
    except ValueError as error:
        traceback.print_exception(error)


if __name__ == "__main__":
    main()
