"""CPU affinity: pinning a process, or a pool's workers, to chosen CPUs.

Shows ``cpus=`` on ``parkit.Process`` and ``parkit.Pool``: the child reports the
CPUs it may run on, which are the ones asked for, from its first instruction.
The CPUs are picked from those this process may use (``os.sched_getaffinity``),
so it runs in a container or under ``taskset`` that allows only some of them.
Linux only (the platform has ``os.sched_setaffinity``).

What the stdlib version gets wrong: the tutorial calls
``os.sched_setaffinity(p.pid, {0, 2})`` *after* ``p.join()``: the child has already
run, unpinned, and ended; its pid is gone (``ProcessLookupError``), or by then
belongs to another process, which gets pinned instead. Called right after
``start()`` it races the child, which may run some of its work first. It also
names CPUs 0 and 2 whatever the machine has. parkit sets the affinity in the
child before the target (or a pool worker's initializer) runs, and checks the
CPU numbers in the parent.
"""

from __future__ import annotations

import os

import parkit


def allowed_cpus(_: object = None) -> list[int]:
    return sorted(os.sched_getaffinity(0))


def main() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    print(f"this process may run on CPUs {allowed}")
    one = allowed[-1]
    with parkit.Process(allowed_cpus, cpus={one}) as p:
        p.start()
        print("a child pinned to one CPU runs on just that one:", p.result(timeout=60) == [one])

    with parkit.Pool(cpus=allowed) as pool:  # one worker per CPU, each allowed all of them
        seen = pool.map(allowed_cpus, range(4))
    print("pool workers, cpus= all allowed CPUs:", all(cpus == allowed for cpus in seen))

    try:
        parkit.Process(allowed_cpus, cpus={os.cpu_count() or 1})  # one past the last CPU
    except ValueError:
        print("a CPU the machine lacks: ValueError in the parent")
    try:
        parkit.Process(allowed_cpus, cpus=set())
    except ValueError:
        print("no CPU at all: ValueError in the parent")


if __name__ == "__main__":
    main()
