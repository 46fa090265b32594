"""Resource management: pools, workers and shared memory that clean up after themselves.

Shows the tutorial's ``with Pool(processes=4) as pool: pool.map(...)``; work
submitted inside the ``with`` block and collected after it; a worker replaced
after a number of tasks (``max_tasks_per_worker``, for libraries that leak); and
shared memory removed at the end of its ``with`` block. No worker outlives its
pool, and ``parkit.shutdown()`` stops the pools that ``parkit.map`` keeps.

What the stdlib version gets wrong: leaving ``with multiprocessing.Pool() as
pool:`` calls ``terminate()``, not ``close(); join()``: work submitted with
``apply_async``/``map_async`` and not yet finished is killed, and its
``AsyncResult.get()`` then waits for ever (no timeout given). Leaving a parkit
pool's block normally waits for the submitted work; leaving it by an exception
stops it. A ``SharedMemory`` segment is removed only if someone calls
``unlink()`` (and the ``resource_tracker`` warns about "leaked shared_memory"
otherwise); a ``parkit.SharedArray`` is removed by its owner at the end of its
block, at exit, or when its owner is killed.
"""

from __future__ import annotations

import os

import parkit


def square(x: int) -> int:
    return x * x


def worker_pid(_: int) -> int:
    return os.getpid()


def main() -> None:
    with parkit.Pool(4) as pool:  # the stdlib's `processes=4` is `workers=4` here
        results = pool.map(square, range(10))
    print(results)

    with parkit.Pool(2) as pool:
        futures = [pool.submit(square, n) for n in range(5)]
    # The block waited for them; the workers are gone.
    print("collected after the block:", [f.result(timeout=0) for f in futures])

    with parkit.Pool(1, max_tasks_per_worker=2) as pool:
        pids = pool.map(worker_pid, range(6), chunksize=1)
    print("6 tasks, 1 worker replaced every 2 tasks: distinct workers =", len(set(pids)))

    with parkit.SharedArray.zeros((1000,)) as shared:
        shared[:] = 1.0  # a NumPy array in shared memory (needs parkit[numpy])
        segment = f"/dev/shm/{shared.name}"
        print("shared memory exists inside the block:", os.path.exists(segment))
    print("and is gone after it:", not os.path.exists(segment))

    parkit.map(square, range(3))  # the one-shot calls keep a pool for the next call
    parkit.shutdown()  # stop it now (it also goes at exit, or after 30 s idle)


if __name__ == "__main__":
    main()
