"""How long a sleeping waiter takes to notice a change: the futex, and its poll fallback.

    python benchmarks/wake_latency.py [--rounds N] [--method M]

A child waits on one ``parkit.Event`` after another; the parent sets each after a
random 5-20 ms, long past the waiter's spin (``_sync/_base.py``: 50 µs), so the
waiter is asleep: in the kernel on the futex (Linux), or in the poll fallback's
slices, which grow from 50 µs to 2 ms (``_sync/_futex.py``), where there is no
futex (macOS). Latency is the child's ``time.monotonic()`` after ``wait()`` returned
minus the parent's just before ``set()`` (CLOCK_MONOTONIC is system-wide on Linux).
Each mode runs in an interpreter of its own: the fallback is
``PARKIT_FORCE_PORTABLE=1`` (the probe forced to macOS's answers).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
from typing import Any

import parkit
from parkit._sync import _futex


def waiter(events: list[parkit.Event], conn: Any) -> None:
    """Wait on each event in turn; send the time each wait returned."""
    conn.send(None)  # up
    for event in events:
        event.wait()
        conn.send(time.monotonic())


def measure(rounds: int, method: str) -> list[float]:
    """Wake-up latencies in µs, one per round."""
    ctx = multiprocessing.get_context(method)
    events = [parkit.Event(context=method) for _ in range(rounds)]
    mine, theirs = ctx.Pipe(duplex=False)
    child = ctx.Process(target=waiter, args=(events, theirs))
    child.start()
    theirs.close()
    mine.recv()
    rng = random.Random(1)
    latencies = []
    for event in events:
        time.sleep(rng.uniform(0.005, 0.02))  # the waiter is asleep by now
        before = time.monotonic()
        event.set()
        latencies.append((mine.recv() - before) * 1e6)
    child.join()
    mine.close()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--method", default="forkserver")
    parser.add_argument("--one", action="store_true", help="this interpreter's mode only")
    args = parser.parse_args()
    if args.one:
        xs = sorted(measure(args.rounds, args.method))
        mode = "futex" if _futex.NATIVE else "poll fallback (forced portable)"
        q = statistics.quantiles(xs, n=100)
        print(
            f"| {mode} | {statistics.median(xs):.0f} | {q[89]:.0f} | {q[98]:.0f} | {xs[-1]:.0f} |"
        )
        return
    print(f"Wake-up latency, {args.rounds} rounds, {args.method}, µs ({time.strftime('%F')})")
    print()
    print("| waiter sleeps on | median | p90 | p99 | max |")
    print("|---|---|---|---|---|")
    for forced in (False, True):
        env = {k: v for k, v in os.environ.items() if k != "PARKIT_FORCE_PORTABLE"}
        if forced:
            env["PARKIT_FORCE_PORTABLE"] = "1"
        command = [sys.executable, __file__, "--one", "--rounds", str(args.rounds)]
        subprocess.run([*command, "--method", args.method], env=env, check=True)


if __name__ == "__main__":
    main()
