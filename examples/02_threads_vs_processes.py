"""Threads against processes on CPU-bound work: the same call, two backends.

Shows ``parkit.map`` running one CPU-bound function on threads
(``backend="thread"``) and on processes (the default), with the same results;
the threads all run in this process, where only one of them holds the GIL at a
time, the processes each have their own interpreter and GIL. Timings are
printed for you to read; on a machine with more than one CPU the processes
finish first, but nothing here depends on it.

What the stdlib version gets wrong: the tutorial starts ten processes at the top
level of the script, without ``if __name__ == "__main__":``. Under ``spawn`` and
``forkserver`` every child imports the script and runs that code again, and fails
with "An attempt has been made to start a new process before the current process
has finished its bootstrapping phase" (parkit raises one ``MainModuleError``
naming the guard instead). It also starts ten processes whatever the machine
has; ``parkit.map`` uses as many workers as this process may use CPUs (its
affinity mask and cgroup quota).
"""

from __future__ import annotations

import os
import time

import parkit


def count(n: int) -> tuple[int, int]:
    """Count to ``n`` in pure Python (holds the GIL throughout); (total, pid)."""
    total = 0
    for _ in range(n):
        total += 1
    return total, os.getpid()


def main() -> None:
    work = [1_000_000] * 4
    start = time.perf_counter()
    serial = [count(n) for n in work]
    serial_s = time.perf_counter() - start

    start = time.perf_counter()
    threaded = parkit.map(count, work, backend="thread")
    threads_s = time.perf_counter() - start

    parkit.map(count, [1] * 4)  # start the worker processes: not part of the timing
    start = time.perf_counter()
    in_processes = parkit.map(count, work)
    processes_s = time.perf_counter() - start

    print(
        f"timings: serial {serial_s:.2f} s, threads {threads_s:.2f} s, "
        f"processes {processes_s:.2f} s on {len(os.sched_getaffinity(0))} CPU(s)"
    )
    totals = [total for total, _ in serial]
    print(
        "same totals from all three:",
        totals == [t for t, _ in threaded] == [t for t, _ in in_processes],
    )
    print("threads ran in this process:", {pid for _, pid in threaded} == {os.getpid()})
    print("processes ran in other processes:", os.getpid() not in {p for _, p in in_processes})
    print("threads share one GIL; processes have one each, so CPU-bound work goes to processes")


if __name__ == "__main__":
    main()
