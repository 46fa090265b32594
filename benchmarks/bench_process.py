"""One call in a fresh process: parkit.run vs the stdlib, per start method.

Times ``parkit.run(fn, x)`` (start a child, run, get the result back, reap) against
the closest stdlib equivalent (``ctx.Process`` plus a ``Pipe`` for the result) and
against ``multiprocessing.Pool(1).apply`` (which creates and shuts down a pool), in
one interleaved run (A B C A B C ...) after a warm-up, and prints the median in ms
as a markdown table. The pool benchmarks of the performance issue extend this suite.

    python benchmarks/bench_process.py [--repeat N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Callable
from multiprocessing.connection import Connection

import parkit


def square(x: int) -> int:
    return x * x


def _send_square(conn: Connection, x: int) -> None:
    conn.send(square(x))
    conn.close()


def stdlib_process(method: str) -> int:
    ctx = multiprocessing.get_context(method)
    reader, writer = ctx.Pipe(duplex=False)
    p = ctx.Process(target=_send_square, args=(writer, 7))
    p.start()
    writer.close()
    value: int = reader.recv()
    p.join()
    return value


def stdlib_pool(method: str) -> int:
    with multiprocessing.get_context(method).Pool(1) as pool:
        value: int = pool.apply(square, (7,))
    return value


def parkit_run(method: str) -> int:
    return parkit.run(square, 7, context=method)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    contenders: dict[str, Callable[[str], int]] = {
        "parkit.run": parkit_run,
        "stdlib Process+Pipe": stdlib_process,
        "stdlib Pool(1).apply": stdlib_pool,
    }
    methods = ["forkserver", "spawn", "fork"]
    times: dict[tuple[str, str], list[float]] = {(n, m): [] for n in contenders for m in methods}
    for method in methods:
        for fn in contenders.values():  # warm-up (starts the forkserver once)
            assert fn(method) == 49
        for _ in range(args.repeat):
            for name, fn in contenders.items():
                start = time.perf_counter()
                assert fn(method) == 49
                times[name, method].append((time.perf_counter() - start) * 1e3)
    print(
        f"Python {platform.python_version()}, {os.cpu_count()} cores, "
        f"median of {args.repeat} runs, ms per call\n"
    )
    print("| contender | " + " | ".join(methods) + " |")
    print("|---|" + "---|" * len(methods))
    for name in contenders:
        cells = [f"{statistics.median(times[name, m]):.1f}" for m in methods]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
