"""``parkit.Lock``: one process at a time, and a holder that dies.

Shows the tutorial's printer — each process takes the lock to print — with a
``parkit.Lock``, the same lock handed to pool tasks, and what happens when a
process dies while holding the lock.

What the stdlib version gets wrong: a ``multiprocessing.Lock`` whose holder dies
(killed, crashed, ``os._exit``) stays locked for ever, and the next ``acquire()``
never returns (CPython gh-88304). It also can't be an argument of a pool task
("Lock objects should only be shared between processes through inheritance").
A parkit lock records its holder: the next process that wants it gets
``parkit.LockAbandoned`` naming the dead holder, once, and the lock works again.
"""

from __future__ import annotations

import os

import parkit


def printer(item: str, lock: parkit.Lock) -> None:
    with lock:  # waits at most lock.timeout, then raises LockTimeout
        print(f"Printing {item}", flush=True)


def die_holding(lock: parkit.Lock) -> None:
    lock.acquire()
    os._exit(1)


def main() -> None:
    lock = parkit.Lock(timeout=30)
    items = ["apple", "banana", "cherry"]
    processes = [parkit.Process(printer, args=(item, lock)) for item in items]
    for p in processes:
        p.start()
    for p in processes:
        p.join()

    # The same lock as an argument of pool tasks.
    parkit.starmap(printer, [(f"{item} from a pool task", lock) for item in items])

    # A holder that died: the next acquirer is told, instead of waiting for ever.
    p = parkit.Process(die_holding, args=(lock,))
    p.start()
    p.join()
    try:
        lock.acquire(timeout=30)
    except parkit.LockAbandoned as error:
        print("LockAbandoned, names the dead holder:", error.holder_pid == p.pid)
    print("and the lock works again:", lock.acquire(timeout=30))
    lock.release()


if __name__ == "__main__":
    main()
