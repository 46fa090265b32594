"""Where workload B's lost time goes: when each worker is idle during one map.

Runs B's 32 items of ~40 ms through parkit and ``multiprocessing.Pool`` (chunksize 1,
and its default) with a function that records on which worker and when each item
ran, and splits the workers' idle time per map into:

- head: from the call to each worker's first item (dispatch latency);
- gaps: between consecutive items on one worker (result hand-off, next frame, and
  the parent's threads taking the worker's core for a moment on a 2-core machine);
- tail: from each worker's last item to the call's return (the last items don't
  divide evenly, plus the final result's trip).

Figures are summed over the workers, per map, medians over the runs. Unlike the
efficiency figure, they don't depend on a serial time measured separately, so the
machine's CPU-speed drift hardly moves them.

    .venv-bench/bin/python benchmarks/b_idle.py [--repeat N] [--workers N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import time
from collections.abc import Callable
from typing import Any

import workloads

import parkit


def calibrate(target: float) -> int:
    iterations = 100_000
    while True:
        t0 = time.perf_counter()
        workloads.spin(iterations)
        took = time.perf_counter() - t0
        if took > 0.02:
            return int(iterations * target / took)
        iterations *= 2


def idle(run: Callable[[], list[tuple[int, float, float]]], repeat: int) -> list[float]:
    """Medians of head, gaps, tail (ms, summed over workers) and busy share (%)."""
    heads, gaps, tails, shares = [], [], [], []
    for _ in range(repeat):
        t0 = time.monotonic()
        out = run()
        t1 = time.monotonic()
        by_worker: dict[int, list[tuple[float, float]]] = {}
        for pid, start, end in out:
            by_worker.setdefault(pid, []).append((start, end))
        spans = [sorted(v) for v in by_worker.values()]
        heads.append(sum(s[0][0] - t0 for s in spans) * 1e3)
        gaps.append(sum(s[i + 1][0] - s[i][1] for s in spans for i in range(len(s) - 1)) * 1e3)
        tails.append(sum(t1 - s[-1][1] for s in spans) * 1e3)
        busy = sum(end - start for s in spans for start, end in s)
        shares.append(100 * busy / ((t1 - t0) * len(spans)))
    return [statistics.median(xs) for xs in (heads, gaps, tails, shares)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--method", default="forkserver")
    args = parser.parse_args()
    items = [calibrate(0.04)] * 32
    fn: Any = workloads.spin_timed
    rows: dict[str, list[float]] = {}
    with parkit.Pool(args.workers, context=args.method) as pool:
        pool.map(fn, items)
        rows["parkit"] = idle(lambda: pool.map(fn, items), args.repeat)
    with multiprocessing.get_context(args.method).Pool(args.workers) as mp_pool:
        mp_pool.map(fn, items, chunksize=1)
        rows["multiprocessing.Pool, chunksize 1"] = idle(
            lambda: mp_pool.map(fn, items, chunksize=1), args.repeat
        )
        rows["multiprocessing.Pool, its default chunksize"] = idle(
            lambda: mp_pool.map(fn, items), args.repeat
        )
    print(f"B's idle time per map, {args.workers} workers, {args.method}, median of {args.repeat}")
    print()
    print("| contender | head ms | gaps ms | tail ms | busy share % |")
    print("|---|---|---|---|---|")
    for name, (head, gap, tail, share) in rows.items():
        print(f"| {name} | {head:.1f} | {gap:.1f} | {tail:.1f} | {share:.1f} |")


if __name__ == "__main__":
    main()
