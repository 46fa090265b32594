"""``parkit.Value``: one number shared by processes, updated without losing any.

Shows the tutorial's shared counter incremented by many processes, three right
ways to do the read-modify-write (``add``, ``update``, ``with get_lock():``), the
same counter handed to pool tasks, and a value that doesn't fit its type.

What the stdlib version gets wrong: the tutorial's ``counter.value += 1`` is a read
and then a write; another process can write in between, and that increment is
lost (it rarely shows with ten processes that sleep first, and often with real
work). A ``multiprocessing.Value`` can't be an argument of a pool task
("Synchronized objects should only be shared between processes through
inheritance"), and ctypes stores a number too big for the type by wrapping it
round without a word (``2**31`` in an ``"i"`` reads back as ``-2147483648``).
parkit's ``add()`` holds the lock over the read and the write, the value goes to
pool tasks as an argument, and a number out of range is a ``ValueError``.
"""

from __future__ import annotations

import parkit


def increment(shared_counter: parkit.Value[int]) -> None:
    shared_counter.add(1)  # the read and the write under the value's lock


def add_many(counter: parkit.Value[int], times: int) -> None:
    for _ in range(times):
        counter.add(1)


def double_many(counter: parkit.Value[int], times: int) -> None:
    for _ in range(times):
        with counter.get_lock():  # the stdlib's way, also right here
            counter.value += 1


def main() -> None:
    counter = parkit.Value("i", 0)  # 'i' is a C int, as in the stdlib
    procs = [parkit.Process(increment, args=(counter,)) for _ in range(10)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print(f"Counter = {counter.value}")

    total = parkit.Value(int, 0)  # parkit.Value[int]: a 64-bit integer
    parkit.starmap(add_many, [(total, 1000)] * 4)
    print("4 pool tasks x 1000 add(1):", total.value)
    parkit.starmap(double_many, [(total, 500)] * 2)
    print("2 more x 500 under get_lock():", total.value)
    print("update(lambda v: v * 2):", total.update(lambda v: v * 2))

    try:
        counter.value = 2**31
    except ValueError as error:
        print("counter.value = 2**31:", error)
    print("counter unchanged:", counter.value)


if __name__ == "__main__":
    main()
