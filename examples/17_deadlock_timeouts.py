"""Deadlock avoidance: locks with timeouts that say who holds them.

Shows the tutorial's ``lock.acquire(timeout=...)`` (it returns ``False`` when the
time runs out, as the stdlib's does: it doesn't raise), the parkit way that does
raise — ``with lock.hold(timeout=...)`` or a lock made with ``timeout=`` —
with an error naming the holder, the classic deadlock (two processes taking two
locks in opposite orders) turned into an error that lets one side back off, and a
thread taking a ``Lock`` it already holds.

What the stdlib version gets wrong: the tutorial wraps ``lock.acquire(timeout=5)``
in ``try: ... except TimeoutError:`` and expects a potential deadlock to land
there. ``acquire`` never raises: it returns ``False``, the ``except`` never runs, and
the program goes on as if it held the lock (and later releases a lock it never
acquired). parkit keeps that stdlib meaning for ``acquire()`` so ported code
behaves the same, and gives ``hold()``/``timeout=``, which raise ``LockTimeout`` (a
``TimeoutError``) naming the holder's pid and whether it is alive.
"""

from __future__ import annotations

import multiprocessing

import parkit


def hold_until_told(lock: parkit.Lock, holding: parkit.Event, release: parkit.Event) -> None:
    with lock:
        holding.set()
        release.wait(60)


def b_then_a(a: parkit.Lock, b: parkit.Lock, holding: parkit.Event) -> str:
    with b:
        holding.set()
        try:
            with a.hold(timeout=0.3):  # the parent holds `a` and is about to want `b`
                return "got both"
        except parkit.LockTimeout as error:
            parent = multiprocessing.parent_process()
            by_parent = parent is not None and error.holder_pid == parent.pid
            return f"LockTimeout on a, held by my parent: {by_parent}; backing off"


def main() -> None:
    lock = parkit.Lock()
    holding, release = parkit.Event(), parkit.Event()
    p = parkit.Process(hold_until_told, args=(lock, holding, release))
    p.start()
    holding.wait(60)
    got = lock.acquire(timeout=0.2)  # the tutorial's call: no exception, just False
    print("lock.acquire(timeout=0.2) while another process holds it returned", got)
    try:
        with lock.hold(timeout=0.2):
            pass
    except parkit.LockTimeout as error:
        print(
            "lock.hold(timeout=0.2) raised LockTimeout; holder is that process:",
            error.holder_pid == p.pid,
            "alive:",
            error.holder_alive,
        )
        print("also a TimeoutError:", isinstance(error, TimeoutError))
    release.set()
    p.join()

    # Two locks, opposite orders: without timeouts both processes wait for ever.
    a, b = parkit.Lock(timeout=30), parkit.Lock(timeout=30)
    holding = parkit.Event()
    with a:
        child = parkit.Process(b_then_a, args=(a, b, holding))
        child.start()
        holding.wait(60)
        with b:  # waits until the child gives up `b`
            print("the parent got a and b; the child said:", repr(child.result(timeout=60)))
    child.join()

    # A Lock is not re-entrant: the error says so.
    with lock:
        try:
            with lock.hold(timeout=0.1):
                pass
        except parkit.LockTimeout as error:
            print("taking a held Lock again:", "use RLock" in str(error))


if __name__ == "__main__":
    main()
