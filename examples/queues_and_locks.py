"""Queues, pipes and locks between processes, and what parkit says when they go wrong.

The multiprocessing tutorial's "exchanging objects" and "synchronization" topics:
a typed producer/consumer Queue whose consumers stop when it is closed, a Pipe, a
Lock that serializes printing, then the two classic failures made loud: a lock held
too long (LockTimeout names the holder) and a holder that died (LockAbandoned).
"""

from __future__ import annotations

import os
import time

import parkit


def consumer(tasks: parkit.Queue[int], results: parkit.Queue[tuple[int, int]]) -> None:
    for n in tasks:  # ends once `tasks` is closed and drained
        results.put((n, n * n))


def greet(conn: parkit.Connection[str], lock: parkit.Lock, name: str) -> None:
    with lock:  # one process prints at a time
        conn.send(f"hello from {name}")


def hog(lock: parkit.Lock, ready: parkit.Event) -> None:
    with lock:
        ready.set()
        time.sleep(3)


def die_holding(lock: parkit.Lock) -> None:
    lock.acquire()
    os._exit(1)


def main() -> None:
    # A producer/consumer pipeline: typed queues, close() ends the consumers' loops.
    tasks, results = parkit.Queue[int](), parkit.Queue[tuple[int, int]]()
    workers = [parkit.Process(consumer, (tasks, results)) for _ in range(2)]
    for p in workers:
        p.start()
    for n in range(10):
        tasks.put(n)
    tasks.close()
    for p in workers:
        p.join()
    squares = sorted(results.get(timeout=5) for _ in range(10))
    print("squares:", [sq for _, sq in squares])

    # A pipe and a lock.
    lock = parkit.Lock(timeout=10)
    parent_end, child_end = parkit.Pipe[str]()
    p = parkit.Process(greet, (child_end, lock, "a child"))
    p.start()
    print("pipe:", parent_end.recv(timeout=10))
    p.join()

    # A lock held too long: the error names the holder.
    ready = parkit.Event()
    p = parkit.Process(hog, (lock, ready))
    p.start()
    ready.wait(10)
    try:
        with lock.hold(timeout=0.5):
            pass
    except parkit.LockTimeout as e:
        print("LockTimeout names the holder:", e.holder_pid == p.pid, e.holder_alive)
    p.join()

    # A holder that died: the next acquirer is told instead of waiting for ever.
    p = parkit.Process(die_holding, (lock,))
    p.start()
    p.join()
    try:
        lock.acquire(timeout=5)
    except parkit.LockAbandoned as e:
        print("LockAbandoned names the dead holder:", e.holder_pid == p.pid)
    print("and the lock works again:", lock.acquire(timeout=1))
    lock.release()


if __name__ == "__main__":
    main()
