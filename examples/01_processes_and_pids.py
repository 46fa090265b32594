"""Processes and pids: which process am I, and which process started me?

Shows a child's pid as the parent sees it (``p.pid``) and as the child sees it
(``os.getpid()``), and the child's parent, under each start method.

What the stdlib version gets wrong: the tutorial prints ``os.getppid()`` in the
child and calls it the parent process. That holds under ``fork`` and ``spawn``,
but under ``forkserver`` — parkit's default on Linux, and the stdlib's own default
from Python 3.14 — the child is forked by the fork server, so ``os.getppid()``
names a helper process your program never started.
``multiprocessing.parent_process().pid`` names the process that asked for the
child under every start method; this example prints both.
"""

from __future__ import annotations

import multiprocessing
import os

import parkit


def who_am_i() -> tuple[int, int, int | None]:
    """The child's pid, its OS parent's pid, and the pid of the process that started it."""
    parent = multiprocessing.parent_process()
    return os.getpid(), os.getppid(), None if parent is None else parent.pid


def main() -> None:
    me = os.getpid()
    print(f"main process: pid {me}")
    for method in ("fork", "spawn", "forkserver"):
        with parkit.Process(who_am_i, context=method) as p:
            p.start()
            pid, ppid, parent = p.result(timeout=60)
        print(f"{method}: child pid {pid}, os.getppid() {ppid}")
        print(
            f"{method}: p.pid is the child's pid: {pid == p.pid}; "
            f"parent_process() is this process: {parent == me}; "
            f"os.getppid() is this process: {ppid == me}"
        )


if __name__ == "__main__":
    main()
