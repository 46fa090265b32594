"""Pools: ``parkit.map`` and ``parkit.Pool``, and a worker that dies.

Shows the tutorial's ``Pool.map`` of ``square`` as ``parkit.map`` (results in input
order), a ``parkit.Pool`` with ``map``, ``submit`` and ``imap``, ``imap`` over an
endless generator, a lambda as the task, and a worker killed in the middle of an
item: that item fails with ``parkit.WorkerCrashed`` and the pool goes on.

What the stdlib version gets wrong: when a worker of ``multiprocessing.Pool`` dies
(the OOM killer, a segfault, ``os._exit``) the call waits for ever (CPython
gh-66587); ``Pool.imap`` reads its whole input before the first result, so an
endless generator never yields; and a lambda can't be a task (``PicklingError``).
"""

from __future__ import annotations

import itertools
import os

import parkit


def square(x: int) -> int:
    return x * x


def square_or_die(x: int) -> int:
    if x == 3:
        os._exit(3)  # what a segfault or the OOM killer looks like from outside
    return x * x


def main() -> None:
    data = [1, 2, 3, 4, 5]
    print("Squares:", parkit.map(square, data))

    with parkit.Pool(2) as pool:
        print("pool.map:", pool.map(square, range(8)))
        print("pool.submit:", pool.submit(square, 12).result(timeout=60))
        endless = itertools.count()  # imap pulls only what the workers need
        print("imap over an endless input:", list(itertools.islice(pool.imap(square, endless), 6)))
        print("a lambda as the task:", pool.map(lambda x: x + 100, range(3)))

        results = pool.map(square_or_die, range(6), chunksize=1, errors="return")
        crash = results[3]
        assert isinstance(crash, parkit.WorkerCrashed)
        print("the other items:", [r for r in results if not isinstance(r, BaseException)])
        print(
            f"item 3: {type(crash).__name__}, exit code {crash.exitcode}, "
            f"item_index {crash.item_index}"
        )
        print("the pool goes on:", pool.map(square, [10, 11]))


if __name__ == "__main__":
    main()
