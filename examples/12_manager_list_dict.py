"""``parkit.Manager``: a list and a dict that several processes fill.

Shows the tutorial's shared list and shared dict, filled by one process per item,
then by pool tasks, and a counter kept right with the manager's lock. The
manager's server process stops at the end of the ``with`` block.

What the stdlib version gets wrong: the tutorial's ``manager = Manager()`` is never
shut down — its server process lives until the interpreter exits, and if the
program is killed (SIGKILL, the OOM killer) the server is orphaned and lives on.
``proxy.value += 1`` from several processes is two calls to the server, a read and
a write, and loses increments. A parkit manager's server exits when its owner
dies, however it dies, and this example holds ``m.Lock()`` over the read and the
write.
"""

from __future__ import annotations

from multiprocessing.managers import DictProxy, ListProxy
from typing import Any

import parkit


def worker(i: int, shared_list: ListProxy[int], shared_dict: DictProxy[int, int]) -> None:
    shared_list.append(i * i)
    shared_dict[i] = i * i


def count(lock: Any, counter: Any, times: int) -> None:
    for _ in range(times):
        with lock:  # the read and the write of += are two calls: hold the lock over both
            counter.value += 1


def main() -> None:
    with parkit.Manager() as manager:
        shared_list: ListProxy[int] = manager.list()
        shared_dict: DictProxy[int, int] = manager.dict()
        procs = [parkit.Process(worker, args=(i, shared_list, shared_dict)) for i in range(5)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
        print(f"Squares are: {sorted(shared_list)}")
        print(f"Squares are: {dict(sorted(shared_dict.items()))}")

        squares: ListProxy[int] = manager.list()
        table: DictProxy[int, int] = manager.dict()
        parkit.starmap(worker, [(i, squares, table) for i in range(5, 10)])
        print("from pool tasks:", sorted(squares), dict(sorted(table.items())))

        lock, counter = manager.Lock(), manager.Value(int, 0)
        parkit.starmap(count, [(lock, counter, 100)] * 4)
        print("counter:", counter.value)
    # Here the server has stopped; the proxies can't be used any more.


if __name__ == "__main__":
    main()
