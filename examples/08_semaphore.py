"""``parkit.Semaphore``: at most N processes at a time, and where to create it.

Shows the tutorial's ten processes sharing a resource that at most three may use
at once, with a ``parkit.Semaphore(3)`` created under the ``__main__`` guard and
passed to each process (the count of processes inside is checked, never above 3),
then the tutorial's own way — the semaphore at the top level of the script — under
the ``spawn`` start method.

What the stdlib version gets wrong: under ``spawn`` and ``forkserver`` every child
imports the script, and the script's top-level ``sem = Semaphore(3)`` makes a new
semaphore in each child. Nothing fails: every process just has a semaphore of its
own, so there is no limit at all. (Under ``fork`` the children inherit the
parent's, which is why it seems to work on Linux with the stdlib's old default.)

parkit makes that mistake loud: a top-level ``parkit.Semaphore`` is still made
again by each ``spawn``/``forkserver`` child's import of the script, but that copy
raises a ``RuntimeError`` saying so (and what to do) as soon as the child uses it.
The last part of this example shows it. Create the semaphore under the guard and
pass it to the processes, as the first part does; that works under every start
method, and for pool tasks too.
"""

from __future__ import annotations

import time

import parkit

TOP_LEVEL_SEM = parkit.Semaphore(3)  # the tutorial's way: made again by every spawn child


def limited_resource(
    ident: int, sem: parkit.Semaphore, inside: parkit.Value[int], most: parkit.Value[int]
) -> None:
    with sem:
        now = inside.add(1)
        most.update(lambda m: max(m, now))
        time.sleep(0.02)  # use the resource
        inside.add(-1)


def grab_top_level_unit() -> bool:
    """Whether this process can take a unit of the script's top-level semaphore."""
    got = TOP_LEVEL_SEM.acquire(timeout=0)
    if got:
        TOP_LEVEL_SEM.release()
    return got


def main() -> None:
    sem = parkit.Semaphore(3)
    inside, most = parkit.Value(int, 0), parkit.Value(int, 0)
    processes = [parkit.Process(limited_resource, args=(i, sem, inside, most)) for i in range(10)]
    for p in processes:
        p.start()
    for p in processes:
        p.join()
    print("10 processes done; never more than 3 inside at once:", 1 <= most.value <= 3)

    try:
        parkit.run(grab_top_level_unit, context="spawn")
    except RuntimeError as e:
        print("top-level semaphore used in a spawn child:", str(e).split(":")[0])


if __name__ == "__main__":
    main()
