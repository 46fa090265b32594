"""Shared memory: an ``Array`` and a NumPy ``SharedArray`` handed to pool tasks.

Shows the tutorial's shared array squared in place by pool tasks
(``Pool.starmap`` with the array as an argument), then a NumPy array in shared
memory whose rows the workers fill in place: no copy of the data goes to the
workers or comes back. Needs NumPy (``pip install 'parkit[numpy]'``) for the
second part.

What the stdlib version gets wrong: the tutorial's code fails —
``multiprocessing.Array`` can't be an argument of a pool task, and
``pool.starmap(worker, [(i, shared_array) ...])`` raises ``RuntimeError:
Synchronized objects should only be shared between processes through
inheritance`` (the tutorial also forgets to import ``Pool``). Under ``spawn`` and
``forkserver``, its array made at the top level is a different array in every
worker. The stdlib's ``SharedMemory`` can be passed by name, but then every
process that attaches to it unlinks it or warns about it at exit (a
``resource_tracker`` "leaked shared_memory" warning, CPython gh-82300). parkit's
``Array`` and ``SharedArray`` are ordinary task arguments under every start
method, and only their creator removes them.
"""

from __future__ import annotations

import numpy as np

import parkit


def worker(i: int, arr: parkit.Array[int]) -> None:
    arr[i] = arr[i] ** 2


def fill_row(grid: parkit.SharedArray, row: int) -> None:
    grid[row, :] = np.arange(grid.shape[1]) * row  # writes the shared pages directly


def main() -> None:
    shared_array = parkit.Array("i", [0, 1, 2, 3, 4])
    with parkit.Pool(2) as pool:
        pool.starmap(worker, [(i, shared_array) for i in range(5)])
        print(shared_array[:])

        with parkit.SharedArray.zeros((4, 5), dtype=np.int64) as grid:
            pool.starmap(fill_row, [(grid, row) for row in range(4)])
            print(np.asarray(grid).tolist())
            print("sum of the filled grid:", int(np.asarray(grid).sum()))


if __name__ == "__main__":
    main()
