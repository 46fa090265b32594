"""Daemon processes: background helpers that never outlive their parent.

Shows the tutorial's daemon: it starts, the main process waits for it only
briefly and exits, and the daemon is stopped before it gets to "Exiting Daemon".
Then a daemon whose parent is killed with SIGKILL: it exits on its own.

What the stdlib version gets wrong: ``multiprocessing`` stops daemonic children in
an exit handler of the parent, so only when the parent exits normally. A parent
killed by SIGKILL (the OOM killer, ``kill -9``, a container stopped hard) runs no
handler, and its daemons live on as orphans for ever (CPython gh-111873). Every
parkit child watches its parent and exits within about a second of its death.
Here the orphaned daemon held a lock: the next ``acquire()`` reports the holder
dead (``LockAbandoned``), which is how this example knows it is gone.
"""

from __future__ import annotations

import os
import signal

import parkit


def daemon_worker(started: parkit.Event) -> None:
    print("Starting Daemon", flush=True)
    started.set()
    parkit.Event().wait(60)  # an event nobody sets: the work of a background helper
    print("Exiting Daemon", flush=True)


def background_helper(lock: parkit.Lock, holding: parkit.Event) -> None:
    with lock:
        holding.set()
        parkit.Event().wait(60)


def parent_killed_hard(lock: parkit.Lock, holding: parkit.Event) -> None:
    helper = parkit.Process(background_helper, args=(lock, holding), daemon=True)
    helper.start()
    holding.wait(60)
    os.kill(os.getpid(), signal.SIGKILL)  # no exit handler runs in this process


def main() -> None:
    # A parent killed hard: its daemon goes too.
    lock, holding = parkit.Lock(), parkit.Event()
    middle = parkit.Process(parent_killed_hard, args=(lock, holding))
    middle.start()
    middle.join(60)
    print("the daemon's parent was killed by", signal.Signals(-(middle.exitcode or 0)).name)
    try:
        got = lock.acquire(timeout=30)  # the daemon held it: wait until it is gone
        print("the lock is free, its holder gone:", got)
    except parkit.LockAbandoned:
        print("the orphaned daemon exited on its own (LockAbandoned: its holder died)")

    # The tutorial's daemon: stopped when the main process exits.
    started = parkit.Event()
    daemon_process = parkit.Process(daemon_worker, args=(started,), daemon=True)
    daemon_process.start()
    started.wait(60)
    daemon_process.join(timeout=0.1)
    print("daemon still running after join(timeout=0.1):", daemon_process.is_alive())
    print(f"daemon pid {daemon_process.pid}")
    print("Main Process exiting")


if __name__ == "__main__":
    main()
