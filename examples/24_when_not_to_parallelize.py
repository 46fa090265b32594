"""When not to parallelize: measure where the time goes before adding processes.

Shows two jobs on one pool made with ``insights=True``: the tutorial's ``square``
over 1,000 numbers, where each item is far cheaper than sending it to a worker,
and a CPU-heavy function over a few items, where the sending is negligible. For
each it prints the serial and the parallel time and the workers' own account —
``overhead_ratio``, the time spent moving data per second of work — and the
verdict those figures give on this machine. The figures vary from run to run;
the results are the same as the serial loop's every time.

What the stdlib version gets wrong: the tutorial times ``Pool(processes=4)``
including its start-up, once, at the top level of the script (no ``__main__``
guard: under ``spawn`` each worker would run the benchmark again), and all it can
say is that one number is bigger than the other. ``multiprocessing`` can't tell
you *why* a pool is slow: start-up, pickling, waiting, or the function itself.
parkit's insights split each worker's time into those phases.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import parkit


def square(x: int) -> int:
    return x * x


def heavy(seed: int) -> int:
    """About 20 ms of pure-Python work."""
    total = seed
    for i in range(400_000):
        total = (total * 31 + i) % 1_000_003
    return total


def compare(pool: parkit.Pool, fn: Callable[[int], int], items: list[int], name: str) -> None:
    start = time.perf_counter()
    serial = [fn(x) for x in items]
    serial_s = time.perf_counter() - start
    before = pool.insights()
    start = time.perf_counter()
    parallel = pool.map(fn, items)
    parallel_s = time.perf_counter() - start
    call = pool.insights() - before
    print(f"{name}: same results as the serial loop: {parallel == serial}")
    print(
        f"{name}: serial {serial_s * 1000:.1f} ms, pool {parallel_s * 1000:.1f} ms, "
        f"overhead/function {call.overhead_ratio:.2f}"
    )
    verdict = (
        "keep it serial" if call.overhead_ratio >= 0.5 or parallel_s > serial_s else ("parallelize")
    )
    print(f"{name}: verdict here: {verdict}")


def main() -> None:
    with parkit.Pool(2, insights=True) as pool:
        pool.map(square, range(4))  # start the workers: not part of what is compared
        compare(pool, square, list(range(1000)), "square x 1000")
        compare(pool, heavy, list(range(8)), "heavy x 8")
    print(
        "rule of thumb: parallelize when each item costs much more than sending it "
        "(overhead/function well below 1)"
    )


if __name__ == "__main__":
    main()
