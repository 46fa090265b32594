"""Terminating a process: stopping it, and what it leaves behind.

Shows the tutorial's worker stopped with ``terminate()`` once it is known to be
working (an ``Event``, not a ``sleep(3)``), its exit code and what ``result()``
says about it; a worker terminated while it held a lock; and ``parkit.run``'s
``timeout=``, which stops the child for you.

What the stdlib version gets wrong: ``terminate()`` sends SIGTERM, and the child
stops where it is, without running ``finally`` blocks or exit handlers. The
stdlib's documentation warns that a lock or semaphore it held is then never
released — the next ``acquire()`` waits for ever — and that a queue it was
writing to may be corrupted. With parkit, the next process that wants the lock
gets ``parkit.LockAbandoned`` naming the terminated holder; a parkit queue never
shows a half-written item. The stdlib has no timeout for a process's work:
``join(timeout)`` returns and leaves the child running.
"""

from __future__ import annotations

import itertools
import time

import parkit


def worker(working: parkit.Event) -> None:
    for n in itertools.count():
        if n == 0:
            print("Working...", flush=True)
            working.set()
        time.sleep(0.05)  # a step of the work


def hold_lock(lock: parkit.Lock, working: parkit.Event) -> None:
    with lock:
        working.set()
        time.sleep(60)


def slow() -> None:
    time.sleep(60)


def main() -> None:
    working = parkit.Event()
    p = parkit.Process(worker, args=(working,))
    p.start()
    working.wait(60)
    p.terminate()
    p.join()
    print("Process terminated, exit code", p.exitcode)
    try:
        p.result()
    except parkit.WorkerCrashed as error:
        print(f"result(): WorkerCrashed, signal {error.signal.name if error.signal else None}")

    lock, working = parkit.Lock(), parkit.Event()
    p = parkit.Process(hold_lock, args=(lock, working))
    p.start()
    working.wait(60)
    p.terminate()
    p.join()
    try:
        lock.acquire(timeout=30)
    except parkit.LockAbandoned as error:
        print(
            "the lock it held: LockAbandoned, holder is the terminated process:",
            error.holder_pid == p.pid,
        )

    try:
        parkit.run(slow, timeout=0.5)
    except parkit.TaskTimeout as error:
        print(f"parkit.run(slow, timeout=0.5): TaskTimeout after {error.timeout} s, child stopped")


if __name__ == "__main__":
    main()
