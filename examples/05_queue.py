"""``parkit.Queue``: passing messages between processes.

Shows the tutorial's worker putting a message for the parent, then a typed
producer/consumer pipeline whose consumers stop when the queue is closed, the
tutorial's order — ``p.join()`` before ``q.get()`` — with a 4 MB item, and an
item that can't be pickled.

What the stdlib version gets wrong: with ``multiprocessing.Queue`` a child that put
a large item can't exit until someone reads it (a feeder thread is still writing
into the pipe), so the tutorial's ``p.join(); q.get()`` deadlocks once the item is
bigger than the pipe's buffer (about 64 KB on Linux). ``put()`` of an object that
can't be pickled returns normally; the feeder thread prints the error and the
consumer waits for ever (CPython gh-84376). parkit's queue holds its items in
shared memory and pickles in ``put()``: the first case just works, the second
raises ``SerializationError`` at once and the queue goes on.
"""

from __future__ import annotations

import threading

import parkit


def worker(q: parkit.Queue[str]) -> None:
    q.put("Hello from the worker process")


def big_worker(q: parkit.Queue[bytes]) -> None:
    q.put(b"x" * 4_000_000)


def consumer(tasks: parkit.Queue[int], results: parkit.Queue[tuple[int, int]]) -> None:
    for n in tasks:  # ends once `tasks` is closed and drained
        results.put((n, n * n))


def main() -> None:
    my_queue = parkit.Queue[str]()
    p = parkit.Process(worker, args=(my_queue,))
    p.start()
    p.join()
    print(f"Main process received message: {my_queue.get(timeout=60)}")

    # A pipeline: two consumers, ten tasks, close() ends the consumers' loops.
    tasks, results = parkit.Queue[int](), parkit.Queue[tuple[int, int]]()
    consumers = [parkit.Process(consumer, (tasks, results)) for _ in range(2)]
    for c in consumers:
        c.start()
    for n in range(10):
        tasks.put(n)
    tasks.close()
    for c in consumers:
        c.join()
    print("squares:", [sq for _, sq in sorted(results.get(timeout=60) for _ in range(10))])

    # join() before get() with a large item: the stdlib deadlocks here.
    big = parkit.Queue[bytes]()
    p = parkit.Process(big_worker, args=(big,))
    p.start()
    p.join(timeout=60)
    print("joined first, exit code", p.exitcode, "then got", len(big.get(timeout=60)), "bytes")

    # An item that can't be pickled: an error now, nothing was put.
    anything = parkit.Queue[object]()
    try:
        anything.put(threading.Lock())
    except parkit.SerializationError as error:
        print("put(threading.Lock()):", type(error).__name__, "- the queue holds", anything.qsize())
    anything.put("still usable")
    print("then:", anything.get(timeout=60))


if __name__ == "__main__":
    main()
