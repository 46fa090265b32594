"""Quick start: run a function over data in parallel, and get a worker's error back.

Shows the two promises parkit is built on:

1. fan a function out over data in separate processes and collect the return
   values in input order (``parkit.Process[R].result()``);
2. an exception raised in a worker arrives in the parent as the *same* exception,
   with the worker's frames in its traceback and a note naming the worker.

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
    workers = [parkit.Process(collatz_steps, (n,)) for n in data]
    for process in workers:
        process.start()
    steps = [process.result(timeout=30) for process in workers]
    for n, s in zip(data, steps, strict=True):
        print(f"collatz_steps({n}) = {s}")
    assert steps == [collatz_steps(n) for n in data]  # parallel == serial
    print(f"parent pid {os.getpid()}, workers {[p.pid for p in workers]}")

    print("\nA worker's exception, as the parent sees it:")
    try:
        parkit.run(parse_row, "17: ???", timeout=30)
    except ValueError as error:
        traceback.print_exception(error)


if __name__ == "__main__":
    main()
