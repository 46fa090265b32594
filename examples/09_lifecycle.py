"""A process's life: created, running, finished — seen from the parent.

Shows the states of a ``parkit.Process`` as the parent observes them: created
(no pid, no exit code), running (``is_alive()``), and finished (an exit code and
a result). An ``Event`` holds the child in its running state until the parent
has looked, so every line is the same on every run.

What the stdlib version gets wrong: the tutorial has the child print "Created",
"Running" and "Terminated" about itself — all three while it is running, since a
process can't report its own creation or end — and uses ``time.sleep(2)`` where
it means "wait until the parent has looked". Its ``Process`` gives the parent no
result: only an exit code, which is 0 even when the target returned an error
value. ``parkit.Process.result()`` gives what the target returned.
"""

from __future__ import annotations

import multiprocessing

import parkit


def lifecycle_demo(started: parkit.Event, go_on: parkit.Event) -> str:
    started.set()
    go_on.wait(60)
    return f"{multiprocessing.current_process().name} finished its work"


def main() -> None:
    started, go_on = parkit.Event(), parkit.Event()
    p = parkit.Process(lifecycle_demo, args=(started, go_on), name="demo")
    print(f"created:  pid {p.pid}, alive {p.is_alive()}, exit code {p.exitcode}")
    p.start()
    started.wait(60)
    print(f"running:  has a pid {p.pid is not None}, alive {p.is_alive()}, exit code {p.exitcode}")
    go_on.set()
    result = p.result(timeout=60)
    p.join()
    print(f"finished: alive {p.is_alive()}, exit code {p.exitcode}, result {result!r}")
    p.close()  # releases the process's resources; the object can't be used after


if __name__ == "__main__":
    main()
